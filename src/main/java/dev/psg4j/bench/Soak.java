package dev.psg4j.bench;

import dev.psg4j.BadInputException;

import org.apache.commons.math3.stat.regression.SimpleRegression;
import org.bytedeco.javacpp.Pointer;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.function.ToLongFunction;

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
 *
 * <p>Growth is judged by the least-squares slope through all samples (at least
 * {@value #MIN_SAMPLES}), per check: native memory moves by several MB from sample to sample
 * without a trend (glibc's thread arenas keep a few MB more or less that malloc_trim cannot
 * return), so the last sample against the first is a coin toss near any ratio, while a leak of a
 * kB per check is a line that the fit finds under that noise, given enough checks: the slope's
 * 95 % interval, which the summary prints, narrows with the span of checks sampled.
 */
public final class Soak {
    /** The fewest samples a soak fits its slopes over. */
    public static final int MIN_SAMPLES = 20;
    /**
     * The samples a soak takes unless told otherwise: native memory's excursions (glibc arenas
     * holding a few MB more for tens of checks) are correlated over ~100 checks, so samples 1 % of
     * a soak apart are near independent, and 100 of them narrow the slope's interval ~2x below 20.
     */
    public static final int DEFAULT_SAMPLES = 100;
    /** Native memory may grow by at most this many bytes per check (the fitted slope). */
    public static final double NATIVE_SLOPE_LIMIT = 1024;
    /** Live native pointers may grow by at most this many per check (the fitted slope): one per 100 checks. */
    public static final double POINTER_SLOPE_LIMIT = 0.01;
    /**
     * Warm-up checks that let LibTorch's working set settle before the first sample (see
     * {@link #run}): a slope through the first thousands of checks would count the settling as growth.
     */
    public static final long SETTLING_CHECKS = 2500;
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

    /**
     * A least-squares line through one quantity of the samples against their check counts: its
     * slope per check, the half-width of the slope's 95 % confidence interval (Student's t over
     * samples - 2 degrees of freedom), and the number of samples it was fitted to.
     */
    public record Trend(double perCheck, double confidence95, int samples) {
        static Trend of(List<Sample> samples, ToLongFunction<Sample> quantity) {
            SimpleRegression fit = new SimpleRegression();
            samples.forEach(s -> fit.addData(s.checks(), quantity.applyAsLong(s)));
            return new Trend(fit.getSlope(), fit.getSlopeConfidenceInterval(), samples.size());
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%+.4g per check (95 %% CI +/- %.3g, %d samples)", perCheck, confidence95,
                    samples);
        }
    }

    /** The samples, first to last, and whether their fitted growth per check stays within the limits. */
    public record Result(List<Sample> samples) {
        public Sample first() {
            return samples.get(0);
        }

        public Sample last() {
            return samples.get(samples.size() - 1);
        }

        /** Native memory's growth per check, in bytes. */
        public Trend nativeTrend() {
            return Trend.of(samples, Sample::nativeBytes);
        }

        /** Live native pointers' growth per check. */
        public Trend pointerTrend() {
            return Trend.of(samples, Sample::pointers);
        }

        public boolean withinLimits() {
            return nativeTrend().perCheck() <= NATIVE_SLOPE_LIMIT && pointerTrend().perCheck() <= POINTER_SLOPE_LIMIT;
        }
    }

    /**
     * Refuses, with a BadInputException naming the numbers, a soak of fewer than
     * {@value #MIN_SAMPLES} samples (a sample every {@code every} checks) or past the bounds.
     */
    public static void requireValid(long warmup, long checks, long every) {
        if (checks < 1 || checks > MAX_CHECKS || warmup < 0 || warmup > MAX_CHECKS) {
            throw new BadInputException("a soak runs 1 to " + MAX_CHECKS + " checks and 0 to " + MAX_CHECKS
                    + " warm-up checks (got " + checks + " checks, " + warmup + " warm-up checks)");
        }
        if (every < 1) {
            throw new BadInputException("the sampling interval must be at least 1 check, got " + every);
        }
        if (checks / every < MIN_SAMPLES) {
            throw new BadInputException("a soak fits its growth over at least " + MIN_SAMPLES + " samples, but "
                    + checks + " checks with a sample every " + every + " give " + checks / every
                    + ": give checks >= " + MIN_SAMPLES + " x the sampling interval");
        }
    }

    /**
     * Runs {@code check} {@code warmup} times unsampled, then {@code checks} times, sampling after
     * every {@code every} of those (at least {@value #MIN_SAMPLES} samples: {@link #requireValid})
     * and handing each sample to {@code progress} as it is taken. A warm-up lets the process reach its working set first: in
     * LibTorch's processes native memory rises by a few tens of MB over the first ~2,500 checks and
     * then stays flat (seen with glibc and with jemalloc; not the JVM's own memory, which JVM native
     * memory tracking shows flat).
     */
    public static Result run(long warmup, long checks, long every, Runnable check, Consumer<Sample> progress) {
        requireValid(warmup, checks, every);
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
