package dev.psg4j.bench;

import dev.psg4j.BadInputException;
import dev.psg4j.Fixtures;
import dev.psg4j.check.CheckMode;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.SketchPrecision;
import dev.psg4j.engine.Engines;
import dev.psg4j.engine.TensorMaps;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Closed checks release what they allocate: 10,000 checks in this JVM at its default heap (after a
 * warm-up), each with a new Model loaded from a file and a new PerSampleCheck, in turn an exact
 * check of vmap, one of microbatch, a sketch check projected in double and one projected in float
 * first (both reductions, the Model's probe memo and the sketch's native buffers in every one),
 * sampled every 100 checks; the least-squares slope through the 100 samples of native
 * memory (resident set - the heap's resident pages) at most 1,024 bytes per check, and of
 * JavaCPP's live pointers at most 0.01 per check. Native memory moves by up to ~15 MB without a
 * trend here (glibc's thread arenas), which puts the slope's standard error near 250 bytes per
 * check over this span (over 2,000 checks it was 1.3 kB, at the limit). A check that keeps ~200 kB
 * and 11 pointers (a loaded module and the gradient maps never freed, as once here) fails both by
 * two orders of magnitude, and a planted 1 MB-per-check leak fails by three. The heap must be
 * located: its committed size in its place once read a false 36 % growth here (G1 first writing
 * young regions it had committed earlier).
 */
class SoakTest {
    private static final Path MODEL = Fixtures.file("mlp", "model.pt");
    private static final long CHECKS = 10_000;
    private static final long MB = 1 << 20;

    @Test
    void tenThousandClosedChecksHoldNoMoreNativeMemoryNorPointers() {
        assertTrue(Soak.heapLocated(), "the soak needs the heap's resident pages: Linux and G1, Parallel or Serial GC");
        List<Tensor> x = new ArrayList<>(TensorMaps.load(Fixtures.file("mlp", "x.pt")).values());
        List<Tensor> y = new ArrayList<>(TensorMaps.load(Fixtures.file("mlp", "y.pt")).values());
        List<GradSampler> samplers = List.of(Engines.vmap(), Engines.microbatch(), Engines.vmap(), Engines.vmap());
        List<UnaryOperator<PerSampleCheck.Builder>> modes = List.of(b -> b, b -> b,
                b -> b.mode(CheckMode.SKETCH),
                b -> b.mode(CheckMode.SKETCH).sketchPrecision(SketchPrecision.FLOAT_FIRST));
        long[] done = {0};
        Soak.Result result = Soak.run(Soak.SETTLING_CHECKS, CHECKS, CHECKS / Soak.DEFAULT_SAMPLES, () -> {
            int turn = (int) (done[0]++ % samplers.size());
            try (Model model = Models.torchScript(MODEL);
                 PerSampleCheck check = modes.get(turn).apply(PerSampleCheck.builder()).model(model).inputs(x)
                         .targets(y).loss(Loss.CROSS_ENTROPY).build()) {
                assertTrue(check.run(samplers.get(turn)).passed());
            }
        }, System.out::println);
        String samples = result.samples().toString();
        System.out.println("native memory (bytes): " + result.nativeTrend() + "; live pointers: " + result.pointerTrend());
        assertEquals(Soak.DEFAULT_SAMPLES, result.samples().size(), samples);
        assertTrue(result.pointerTrend().perCheck() <= Soak.POINTER_SLOPE_LIMIT,
                () -> "live pointers grew by " + result.pointerTrend() + ": " + samples);
        assertTrue(result.nativeTrend().perCheck() <= Soak.NATIVE_SLOPE_LIMIT,
                () -> "native memory grew by " + result.nativeTrend() + ": " + samples);
        assertTrue(result.withinLimits());
    }

    /** The criterion fails a check that leaks 1 MB of written native memory (freed afterwards), by far. */
    @Test
    void aMegabytePerCheckLeakFailsTheCriterion() {
        List<Pointer> leaked = new ArrayList<>();
        try {
            Soak.Result result = Soak.run(0, Soak.MIN_SAMPLES, 1, () -> {
                Pointer block = Pointer.malloc(MB);
                Pointer.memset(block, 1, MB);
                leaked.add(block);
            }, sample -> { });
            Soak.Trend memory = result.nativeTrend();
            System.out.println("planted 1 MB per check: native memory (bytes): " + memory);
            assertTrue(memory.perCheck() - memory.confidence95() > 100 * Soak.NATIVE_SLOPE_LIMIT,
                    () -> "not caught clearly: " + memory + ", " + result.samples());
            assertTrue(memory.perCheck() > 0.9 * MB && memory.perCheck() < 2 * MB, () -> "not the leak: " + memory);
            assertFalse(result.withinLimits());
        } finally {
            leaked.forEach(Pointer::free);
        }
    }

    /**
     * Noise without a trend passes, and a small leak under the same noise fails: native memory
     * moving uniformly within +/-7 MB from sample to sample without a trend (as CI saw it), over 20
     * samples every 500 checks; then the same noise on top of 4 kB per check.
     */
    @Test
    void theFittedSlopeSeesALeakUnderNoiseThatMovesTheEndpoints() {
        Random noise = new Random(17);
        List<Soak.Sample> flat = new ArrayList<>();
        List<Soak.Sample> leaking = new ArrayList<>();
        for (long checks = 500; checks <= 10_000; checks += 500) {
            long memory = 150 * MB + (long) ((noise.nextDouble() * 2 - 1) * 7 * MB);
            flat.add(new Soak.Sample(checks, memory + 300 * MB, 300 * MB, memory, 5000));
            leaking.add(new Soak.Sample(checks, memory + 4096 * checks + 300 * MB, 300 * MB, memory + 4096 * checks, 5000));
        }
        Soak.Result clean = new Soak.Result(flat);
        Soak.Result leak = new Soak.Result(leaking);
        assertTrue(clean.withinLimits(), () -> "false alarm: " + clean.nativeTrend());
        assertEquals(0.0, clean.pointerTrend().perCheck());
        assertFalse(leak.withinLimits(), () -> "4 kB per check missed: " + leak.nativeTrend());
        assertEquals(4096, leak.nativeTrend().perCheck(), 2 * leak.nativeTrend().confidence95());
    }

    @Test
    void aSoakNeedsTwentySamples() {
        BadInputException e = assertThrows(BadInputException.class, () -> Soak.run(0, 190, 10, () -> { }, s -> { }));
        assertTrue(e.getMessage().contains("at least 20 samples") && e.getMessage().contains("give 19"), e::getMessage);
    }
}
