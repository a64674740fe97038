/**
 * The check: a model, a batch, a loss and reductions; the {@link dev.psg4j.check.GradSampler} SPI
 * whose output is verified; JUnit 5 assertions over the result.
 */
package dev.psg4j.check;
