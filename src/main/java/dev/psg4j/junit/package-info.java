/**
 * Assertions for tests over psg4j's reports ({@link dev.psg4j.junit.PerSampleAssertions}): the only
 * package that uses a test framework's types, through opentest4j, which psg4j declares optional.
 */
package dev.psg4j.junit;
