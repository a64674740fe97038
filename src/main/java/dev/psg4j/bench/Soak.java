package dev.psg4j.bench;

import dev.psg4j.BadInputException;

import org.bytedeco.javacpp.Pointer;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Runs one check many times in this process and samples its memory, to show that closed checks
 * release what they allocate. Memory beyond the Java heap (the process's resident set minus the
 * heap's resident pages, {@link ProcessMemory}) and JavaCPP's count of live native pointers are what
 * a leak of native objects grows; the Java heap itself is the garbage collector's business, and a
 * small {@code -Xmx} would hide such a leak by forcing collections that free unclosed pointers. Each
 * sample is taken after returning the native allocator's free pages to the system (glibc's
 * {@code malloc_trim}): it measures what the process holds, not what malloc keeps cached in its
 * arenas, which on glibc otherwise adds a bounded plateau of a few tens of MB over the first
 * thousands of checks.
 */
public final class Soak {
    /** Native memory at the last sample may exceed the first sample's by at most this factor. */
    public static final double NATIVE_GROWTH_LIMIT = 1.05;
    /** Live native pointers at the last sample may exceed the first sample's by at most this many. */
    public static final long POINTER_GROWTH_LIMIT = 100;
    /** The most checks one soak runs (a day of a user's checks fits; a typo does not hang the JVM). */
    public static final long MAX_CHECKS = 10_000_000;

    private Soak() {
    }

    /**
     * Memory after {@code checks} checks: resident set, the Java heap's resident bytes (its committed
     * bytes where {@link #heapLocated()} is false), their difference (native memory and the JVM's
     * own), and {@link Pointer#totalCount()}.
     */
    public record Sample(long checks, long residentBytes, long heapBytes, long nativeBytes, long pointers) {
        static Sample now(long checks) {
            PeakMemory.releaseFreeNativeMemory();
            ProcessMemory.Reading memory = ProcessMemory.read();
            return new Sample(checks, memory.residentBytes(), memory.heapBytes(), memory.nativeBytes(),
                    Pointer.totalCount());
        }
    }

    /**
     * Whether samples subtract the heap's resident pages (Linux, and a collector that says where its
     * heap lies: G1, Parallel, Serial, Shenandoah) rather than its committed size, which overstates
     * native growth while the collector first writes regions it committed earlier.
     */
    public static boolean heapLocated() {
        return ProcessMemory.heapLocated();
    }

    /** The samples, first to last, and whether the last stayed within the limits of the first. */
    public record Result(List<Sample> samples) {
        public Sample first() {
            return samples.get(0);
        }

        public Sample last() {
            return samples.get(samples.size() - 1);
        }

        /** Last native memory / first native memory. */
        public double nativeGrowth() {
            return (double) last().nativeBytes() / first().nativeBytes();
        }

        /** Last pointer count - first pointer count. */
        public long pointerGrowth() {
            return last().pointers() - first().pointers();
        }

        public boolean withinLimits() {
            return nativeGrowth() <= NATIVE_GROWTH_LIMIT && pointerGrowth() <= POINTER_GROWTH_LIMIT;
        }
    }

    /**
     * Runs {@code check} {@code warmup} times unsampled, then {@code checks} times, sampling after
     * every {@code every} of those (the first sample is the baseline) and handing each sample to
     * {@code progress} as it is taken. A warm-up lets the process reach its working set first: in
     * LibTorch's processes native memory rises by a few tens of MB over the first ~2,500 checks and
     * then stays flat (seen with glibc and with jemalloc; not the JVM's own memory, which JVM native
     * memory tracking shows flat).
     */
    public static Result run(long warmup, long checks, long every, Runnable check, Consumer<Sample> progress) {
        if (every < 1 || checks < 2 * every || checks > MAX_CHECKS || warmup < 0 || warmup > MAX_CHECKS) {
            throw new BadInputException("a soak needs at least two samples and at most " + MAX_CHECKS
                    + " checks and warm-up checks: give checks >= 2 x the sampling interval (got " + checks
                    + " checks, a sample every " + every + ", " + warmup + " warm-up checks)");
        }
        for (long done = 0; done < warmup; done++) {
            check.run();
        }
        List<Sample> samples = new ArrayList<>();
        for (long done = 1; done <= checks; done++) {
            check.run();
            if (done % every == 0) {
                Sample sample = Sample.now(done);
                samples.add(sample);
                progress.accept(sample);
            }
        }
        return new Result(List.copyOf(samples));
    }
}
