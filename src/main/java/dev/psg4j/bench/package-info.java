/**
 * {@code psg4j bench}: the DESIGN §7 suite ({@link dev.psg4j.bench.Suite}) timed with JMH
 * ({@link dev.psg4j.bench.SuiteBenchmark}, run by {@link dev.psg4j.bench.Bench}), medians and
 * ratios in a {@link dev.psg4j.bench.BenchResult}.
 */
package dev.psg4j.bench;
