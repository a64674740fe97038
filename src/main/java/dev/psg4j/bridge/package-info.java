/**
 * The JavaCPP bridge to the native core ({@code src/main/cpp}): {@link dev.psg4j.bridge.NativeCore}
 * is pure annotations, {@link dev.psg4j.bridge.Natives} types the native errors. Internal.
 */
package dev.psg4j.bridge;
