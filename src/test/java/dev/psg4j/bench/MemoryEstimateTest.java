package dev.psg4j.bench;

import org.junit.jupiter.api.Test;

import java.util.EnumMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The line through two measured peaks, its floor of B × |θ| for the samplers, and the largest B that fits. */
class MemoryEstimateTest {
    private static final long MIB = 1 << 20;

    private static MemoryEstimate estimate(Map<BenchMethod, long[]> peaks, long inputPerSample, long gradientPerSample) {
        return new MemoryEstimate("m", 16, 64, peaks, inputPerSample, gradientPerSample);
    }

    @Test
    void aPeakGrowsAlongTheLineThroughItsTwoMeasurements() {
        Map<BenchMethod, long[]> peaks = new EnumMap<>(BenchMethod.class);
        peaks.put(BenchMethod.BACKWARD, new long[] {10 * MIB + 16 * 1000, 10 * MIB + 64 * 1000});
        MemoryEstimate e = estimate(peaks, 100, 0);
        assertEquals(1000, e.perSample(BenchMethod.BACKWARD));
        assertEquals(10 * MIB, e.fixed(BenchMethod.BACKWARD));
        assertEquals(10 * MIB + 1_000_000_000L, e.peak(BenchMethod.BACKWARD, 1_000_000));
        assertEquals(10 * MIB + 1_000_000_000L + 100_000_000L, e.need(1_000_000));
        long fits = e.largestBatchWithin(e.need(1_000_000));
        assertTrue(fits >= 999_999 && fits <= 1_000_000, () -> "fits " + fits);
    }

    @Test
    void aSamplerNeedsAtLeastItsPerSampleGradientsWhateverTheMeasurementsSay() {
        Map<BenchMethod, long[]> peaks = new EnumMap<>(BenchMethod.class);
        peaks.put(BenchMethod.VMAP, new long[] {5 * MIB, 5 * MIB});  // noise: no growth seen
        peaks.put(BenchMethod.PROBE, new long[] {5 * MIB, 5 * MIB});
        MemoryEstimate e = estimate(peaks, 0, 4000);
        assertEquals(4000, e.perSample(BenchMethod.VMAP));
        assertEquals(0, e.perSample(BenchMethod.PROBE));
        assertEquals(BenchMethod.VMAP, e.largest(1000));
        String line = e.refusal(1_000_000_000L, 8L << 30);
        assertTrue(line.startsWith("m at B = 1000000000 needs about 3.6 TiB (vmap's call alone 3.6 TiB, of which "
                + "3.6 TiB are its per-sample gradients"), line);
        assertTrue(line.contains("more than 90 % of the 8.0 GiB of memory available: give --batch up to 1,931,48"),
                line);
        assertTrue(e.exceeds(1_931_490, 8L << 30) && !e.exceeds(1_931_480, 8L << 30));
    }

    @Test
    void sizesThatOverflowSaturateInsteadOfWrapping() {
        Map<BenchMethod, long[]> peaks = new EnumMap<>(BenchMethod.class);
        peaks.put(BenchMethod.MICROBATCH, new long[] {MIB, 2 * MIB});
        MemoryEstimate e = estimate(peaks, 1L << 40, 1L << 40);
        assertEquals(Long.MAX_VALUE, e.need(Long.MAX_VALUE / 2));
        assertEquals(0, e.largestBatchWithin(MIB));
    }
}
