package dev.psg4j.bench;

import dev.psg4j.BadInputException;
import dev.psg4j.Fixtures;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.check.PerSampleCheck;
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

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Closed checks release what they allocate: 2,000 checks in this JVM at its default heap (after a
 * warm-up), each with a new Model loaded from a file and a new PerSampleCheck, vmap and microbatch
 * alternating; native memory (resident set - the heap's resident pages) at check 2,000 within 5 % of
 * check 1,000, and JavaCPP's live pointers within 100. Before the fix each check kept ~200 kB and 11
 * pointers (a loaded module and the gradient maps were never freed), which both criteria catch. The
 * heap must be located: its committed size in its place once read a false 36 % growth here (G1 first
 * writing young regions it had committed earlier).
 */
class SoakTest {
    private static final Path MODEL = Fixtures.file("mlp", "model.pt");
    /** LibTorch's working set settles within ~2,500 checks (see Soak.run); measured from then on. */
    private static final long WARMUP = 2500;

    @Test
    void twoThousandClosedChecksHoldNoMoreNativeMemoryNorPointers() {
        assertTrue(Soak.heapLocated(), "the soak needs the heap's resident pages: Linux and G1, Parallel or Serial GC");
        List<Tensor> x = new ArrayList<>(TensorMaps.load(Fixtures.file("mlp", "x.pt")).values());
        List<Tensor> y = new ArrayList<>(TensorMaps.load(Fixtures.file("mlp", "y.pt")).values());
        List<GradSampler> samplers = List.of(Engines.vmap(), Engines.microbatch());
        long[] done = {0};
        Soak.Result result = Soak.run(WARMUP, 2000, 1000, () -> {
            try (Model model = Models.torchScript(MODEL);
                 PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(x).targets(y)
                         .loss(Loss.CROSS_ENTROPY).build()) {
                assertTrue(check.run(samplers.get((int) (done[0]++ % 2))).passed());
            }
        }, System.out::println);
        String samples = result.samples().toString();
        assertEquals(2, result.samples().size(), samples);
        assertTrue(result.pointerGrowth() <= Soak.POINTER_GROWTH_LIMIT, () -> "live pointers grew: " + samples);
        assertTrue(result.nativeGrowth() <= Soak.NATIVE_GROWTH_LIMIT, () -> "native memory grew: " + samples);
    }

    /** The same criterion fails a check that leaks 1 MB of written native memory (freed afterwards). */
    @Test
    void aMegabytePerCheckLeakFailsTheCriterion() {
        List<Pointer> leaked = new ArrayList<>();
        try {
            Soak.Result result = Soak.run(0, 200, 100, () -> {
                Pointer block = Pointer.malloc(1 << 20);
                Pointer.memset(block, 1, 1 << 20);
                leaked.add(block);
            }, sample -> { });
            assertTrue(result.nativeGrowth() > Soak.NATIVE_GROWTH_LIMIT, () -> "not caught: " + result.samples());
            assertFalse(result.withinLimits());
        } finally {
            leaked.forEach(Pointer::free);
        }
    }

    @Test
    void aSoakNeedsTwoSamples() {
        BadInputException e = assertThrows(BadInputException.class, () -> Soak.run(0, 10, 10, () -> { }, s -> { }));
        assertTrue(e.getMessage().contains("at least two samples"), e::getMessage);
    }
}
