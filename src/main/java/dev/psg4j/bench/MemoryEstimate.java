package dev.psg4j.bench;

import dev.psg4j.internal.SystemMemory;

import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;

/**
 * What one model at a batch size B needs in memory during a bench: its batch (inputs and targets)
 * plus the largest peak extra memory of one call of any method run on it, each method's peak
 * measured at two small batch sizes and extended along the line through them.
 *
 * <p>Note [Bench memory estimate]: a method's peak grows with B in proportion (per-sample
 * gradients are B × |θ| floats; activations, their gradients and the vmap engine's working set
 * are a fixed number of floats per sample) on top of a fixed part (the parameters' gradients,
 * workspaces): peak(B) ≈ fixed + perSample × B. Measuring it ({@link PeakMemory}) at two sizes gives
 * both terms for any method, a plug-in's engine and the user's model included, with no model of
 * each layer; it cannot be below the B × |θ| elements a sampler returns, which bounds it from below.
 * The bench's own tests measure real peaks at larger B against it.
 */
final class MemoryEstimate {
    /** The two batch sizes measured: small enough to take a moment on any suite model, far enough apart for the slope. */
    static final long SMALL = 16;
    static final long LARGE = 64;
    /**
     * The share of the memory available a sweep may plan to use: the line through two small sizes
     * read 0–7 % low against peaks measured at B = 512 to 4096 on the suite (cnn the most), and the
     * JVM and the allocator need room of their own.
     */
    static final double USABLE = 0.9;

    private final String name;
    private final long smallBatch;
    private final long largeBatch;
    private final Map<BenchMethod, long[]> peaks;
    private final long inputBytesPerSample;
    private final long gradientBytesPerSample;

    /**
     * @param peaks                  per method, its peak extra bytes at {@code smallBatch} and at {@code largeBatch}
     * @param inputBytesPerSample    the batch's bytes (inputs and targets) per sample
     * @param gradientBytesPerSample |θ| × the parameters' element size: one sample's gradients
     */
    MemoryEstimate(String name, long smallBatch, long largeBatch, Map<BenchMethod, long[]> peaks,
                   long inputBytesPerSample, long gradientBytesPerSample) {
        if (smallBatch >= largeBatch) {
            throw new IllegalArgumentException("two batch sizes are needed, got " + smallBatch + " and " + largeBatch);
        }
        this.name = name;
        this.smallBatch = smallBatch;
        this.largeBatch = largeBatch;
        this.peaks = new EnumMap<>(peaks);
        this.inputBytesPerSample = inputBytesPerSample;
        this.gradientBytesPerSample = gradientBytesPerSample;
    }

    /** The bytes per sample of {@code method}'s peak: the slope between the two sizes, at least the gradients a sampler returns. */
    long perSample(BenchMethod method) {
        long[] p = peaks.get(method);
        long slope = Math.max(0, (p[1] - p[0]) / (largeBatch - smallBatch));
        return returnsGradients(method) ? Math.max(slope, gradientBytesPerSample) : slope;
    }

    /** The fixed bytes of {@code method}'s peak: what the line through the larger measurement leaves at B = 0. */
    long fixed(BenchMethod method) {
        long[] p = peaks.get(method);
        return Math.max(0, p[1] - perSample(method) * largeBatch);
    }

    /** One call of {@code method} at {@code batch}: fixed + perSample × B (saturating). */
    long peak(BenchMethod method, long batch) {
        return saturatedAdd(fixed(method), saturatedMultiply(perSample(method), batch));
    }

    /** The model's batch plus the largest method's peak at {@code batch}. */
    long need(long batch) {
        long largest = peaks.keySet().stream().mapToLong(m -> peak(m, batch)).max().orElse(0);
        return saturatedAdd(saturatedMultiply(inputBytesPerSample, batch), largest);
    }

    /** The method with the largest peak at {@code batch}. */
    BenchMethod largest(long batch) {
        return peaks.keySet().stream().max((a, b) -> Long.compare(peak(a, batch), peak(b, batch))).orElseThrow();
    }

    /** The largest B whose {@link #need} fits in {@code available} bytes (0 if none does). */
    long largestBatchWithin(long available) {
        long best = Long.MAX_VALUE;
        for (BenchMethod m : peaks.keySet()) {
            long perSample = perSample(m) + inputBytesPerSample;
            long room = available - fixed(m);
            best = Math.min(best, room <= 0 ? 0 : perSample == 0 ? Long.MAX_VALUE : room / perSample);
        }
        return best;
    }

    /** Whether {@code batch} needs more than the {@link #USABLE} share of {@code available} bytes. */
    boolean exceeds(long batch, long available) {
        return need(batch) > usable(available);
    }

    private static long usable(long available) {
        return (long) (available * USABLE);
    }

    /**
     * The one line refusing {@code batch}: what it would need and from what, the memory available,
     * and the largest batch size that fits in its {@link #USABLE} share.
     */
    String refusal(long batch, long available) {
        BenchMethod worst = largest(batch);
        String gradients = returnsGradients(worst) ? ", of which " + SystemMemory.describe(
                saturatedMultiply(gradientBytesPerSample, batch)) + " are its per-sample gradients" : "";
        long fits = largestBatchWithin(usable(available));
        return String.format(Locale.ROOT, "%s at B = %d needs about %s (%s's call alone %s%s; %s of batch), "
                        + "more than %.0f %% of the %s of memory available: give --batch up to %s for %s (estimated from "
                        + "each method's peak at B = %d and %d)",
                name, batch, SystemMemory.describe(need(batch)), worst.label(),
                SystemMemory.describe(peak(worst, batch)), gradients,
                SystemMemory.describe(saturatedMultiply(inputBytesPerSample, batch)), USABLE * 100,
                SystemMemory.describe(available), fits == 0 ? "none: free memory first" : String.format(Locale.ROOT,
                        "%,d", fits), name, smallBatch, largeBatch);
    }

    private static boolean returnsGradients(BenchMethod method) {
        return method != BenchMethod.PROBE && method != BenchMethod.BACKWARD;
    }

    private static long saturatedMultiply(long a, long b) {
        long high = Math.multiplyHigh(a, b);
        long low = a * b;
        return high != 0 || low < 0 ? Long.MAX_VALUE : low;
    }

    private static long saturatedAdd(long a, long b) {
        long sum = a + b;
        return sum < 0 ? Long.MAX_VALUE : sum;
    }
}
