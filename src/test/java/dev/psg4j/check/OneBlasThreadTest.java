package dev.psg4j.check;

import dev.psg4j.bridge.NativeCore;
import dev.psg4j.engine.Engines;
import dev.psg4j.engine.LayerCapture;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every computation psg4j runs sees OpenBLAS at one thread, whatever the process's count, and the
 * count is the process's again afterwards: a Java forward records the count each time an engine,
 * the reference, the probes or a check's sampler runs it.
 */
class OneBlasThreadTest {
    private static final int PROCESS_COUNT = 3;
    private int before;

    @BeforeEach
    void setProcessCount() {
        before = OneBlasThreadScope.blasThreads();
        // A count other than one, as on any multi-core machine (also under taskset -c 0).
        NativeCore.set_openblas_threads_for_tests(PROCESS_COUNT);
    }

    @AfterEach
    void restoreProcessCount() {
        if (before > 0) {
            NativeCore.set_openblas_threads_for_tests(before);
        }
    }

    private static Map<String, Tensor> params() {
        torch.manual_seed(5);
        Map<String, Tensor> p = new LinkedHashMap<>();
        p.put("w", torch.randn(4, 6).requires_grad_(true));
        p.put("b", torch.randn(4).requires_grad_(true));
        return p;
    }

    @Test
    void engineReferenceProbesAndSamplerRunOnOneBlasThreadAndTheCountComesBack() {
        assertEquals(PROCESS_COUNT, OneBlasThreadScope.blasThreads(), "the test hook sets OpenBLAS's count");
        Set<Integer> seen = ConcurrentHashMap.newKeySet();
        Tensor x = torch.randn(5, 6);
        try (Model model = Models.function("recording linear", params(), (in, p) -> {
                 seen.add(OneBlasThreadScope.blasThreads());
                 return torch.linear(in.get(0), p.get("w"), new TensorOptional(p.get("b")));
             });
             Batch batch = new Batch(List.of(x), List.of(), 0, 0)) {
            Engines.vmap().perSampleGradients(model, batch, Loss.L1, Reduction.SUM).values().forEach(Tensor::close);
            assertEquals(Set.of(1), seen, "the vmap engine's forwards");
            assertEquals(PROCESS_COUNT, OneBlasThreadScope.blasThreads(), "after the vmap engine");
            seen.clear();
            Engines.microbatch().perSampleGradients(model, batch, Loss.L1, Reduction.MEAN).values().forEach(Tensor::close);
            assertEquals(Set.of(1), seen, "the microbatch engine's forwards");
            seen.clear();
            assertTrue(Probes.determinism(model, batch).deterministic());
            assertEquals(Set.of(1), seen, "the determinism probe's forwards");
            seen.clear();
            Set<Integer> inSampler = ConcurrentHashMap.newKeySet();
            GradSampler javaSampler = new GradSampler() {
                @Override
                public String name() {
                    return "recording";
                }

                @Override
                public Map<String, Tensor> perSampleGradients(Model m, Batch b, Loss loss, Reduction reduction) {
                    inSampler.add(OneBlasThreadScope.blasThreads());  // a Java sampler's own products
                    return Engines.microbatch().perSampleGradients(m, b, loss, reduction);
                }
            };
            try (PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(x).threads(2).build()) {
                assertTrue(check.run(javaSampler).passed());
            }
            assertEquals(Set.of(1), inSampler, "a Java sampler run by a check");
            assertEquals(Set.of(1), seen, "the check's probes, sampler and reference");
        }
        assertEquals(PROCESS_COUNT, OneBlasThreadScope.blasThreads(), "after the check");
    }

    @Test
    void layerCaptureRunsOnOneBlasThread() {
        torch.manual_seed(2);
        try (dev.psg4j.bench.Suite mlp = dev.psg4j.bench.Suite.build("mlp", 3);
             Batch batch = new Batch(List.of(mlp.input()), List.of(), 0, 0)) {
            // No forward of ours to record from: the count must at least be back afterwards.
            LayerCapture.of(mlp.model(), batch, Loss.L1, Reduction.SUM).close();
            assertEquals(PROCESS_COUNT, OneBlasThreadScope.blasThreads());
        }
    }

    @Test
    void overlappingScopesOnTwoThreadsHoldOneThreadUntilTheLastEnds() throws Exception {
        CountDownLatch opened = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        Thread other = new Thread(() -> {
            try (OneBlasThreadScope scope = OneBlasThreadScope.open()) {
                opened.countDown();
                release.await(1, TimeUnit.MINUTES);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        other.start();
        assertTrue(opened.await(1, TimeUnit.MINUTES));
        try (OneBlasThreadScope mine = OneBlasThreadScope.open()) {
            assertEquals(1, OneBlasThreadScope.blasThreads());
        }
        assertEquals(1, OneBlasThreadScope.blasThreads(), "the other thread's scope still holds it");
        release.countDown();
        other.join(TimeUnit.MINUTES.toMillis(1));
        assertFalse(other.isAlive());
        assertEquals(PROCESS_COUNT, OneBlasThreadScope.blasThreads(), "restored when the last scope ends");
    }
}
