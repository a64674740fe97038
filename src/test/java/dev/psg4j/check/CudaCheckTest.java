package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.Fixtures;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.ParamReport;
import dev.psg4j.report.ProbeReport;
import dev.psg4j.report.ReductionReport;

import com.fasterxml.jackson.databind.JsonNode;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;

import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The checks on CUDA: the same fixtures as on the CPU, the model loaded onto the GPU,
 * the check on its default device (the model's). Runs only where bytedeco's GPU LibTorch sees a
 * CUDA device; elsewhere JUnit reports it skipped with the reason.
 */
@EnabledIf(value = "cudaVisible", disabledReason = "no CUDA device is visible (bytedeco's CPU natives are loaded, or "
        + "no GPU/driver): the CUDA variants run where psg4j's -Pgpu build sees a device")
class CudaCheckTest {
    private static final String CUDA = "cuda:0";
    /** How far a float32 number on the GPU may be from the CPU's (different kernels, same IEEE float32). */
    private static final double RTOL = 1e-4, ATOL = 1e-6;

    static boolean cudaVisible() {
        return Devices.cudaVisible();
    }

    private static Model mlpOn(String device) {
        return Models.torchScript(Fixtures.file("mlp", "model.pt"), device);
    }

    private static CheckReport mlpCheck(String device, GradSampler sampler, Reduction... reductions) {
        try (Model model = mlpOn(device);
             PerSampleCheck check = FixtureMatrixTest.checkOf("mlp", model).reductions(reductions).build()) {
            assertEquals(device, check.device(), "the check's default device is the model's");
            return check.run(sampler);
        }
    }

    /** The fixture candidate {@code file}, on {@code device}. */
    private static GradSampler candidateOn(String device, String file, Reduction reduction) {
        return Engines.precomputed(file, reduction, Devices.moveAll(Fixtures.grads("mlp", file), device));
    }

    private static void assertClose(double cpu, double cuda, String what) {
        assertTrue(Math.abs(cpu - cuda) <= ATOL + RTOL * Math.abs(cpu), what + ": cpu " + cpu + ", cuda " + cuda);
    }

    /** Same verdicts, failing parameters and samples, and errors within float32 tolerance of the CPU's. */
    private static void assertSameNumbers(CheckReport cpu, CheckReport cuda) {
        assertEquals(cpu.passed(), cuda.passed());
        assertEquals(cpu.reductions().size(), cuda.reductions().size());
        for (int r = 0; r < cpu.reductions().size(); r++) {
            ReductionReport a = cpu.reductions().get(r), b = cuda.reductions().get(r);
            assertEquals(a.reduction(), b.reduction());
            for (int p = 0; p < a.params().size(); p++) {
                ParamReport x = a.params().get(p), y = b.params().get(p);
                assertEquals(x.name(), y.name());
                assertEquals(x.passed(), y.passed(), x.name());
                assertEquals(x.badSamples(), y.badSamples(), x.name());
                if (!x.passed()) {
                    assertClose(x.maxAbsErr(), y.maxAbsErr(), x.name() + " max_abs_err");
                }
            }
        }
        assertEquals(cpu.failures().size(), cuda.failures().size());
    }

    @Test
    void exactChecksOfBothReductionsPassOnCuda() {
        CheckReport report = mlpCheck(CUDA, Engines.vmap(), Reduction.SUM, Reduction.MEAN);
        assertTrue(report.passed(), report::table);
        assertEquals(CUDA, report.device());
        assertNotNull(report.referenceRoute());
        assertTrue(report.referenceRoute().startsWith("cuda"), report.referenceRoute());
        assertEquals(2, report.reductions().size());
    }

    @Test
    void aWrongCandidateIsCaughtWithTheCpusNumbers() {
        CheckReport cpu = mlpCheck("cpu", Engines.precomputed("perturbed", Reduction.SUM,
                Fixtures.grads("mlp", "bug_perturbed.pt")), Reduction.SUM);
        CheckReport cuda = mlpCheck(CUDA, candidateOn(CUDA, "bug_perturbed.pt", Reduction.SUM), Reduction.SUM);
        assertFalse(cuda.passed(), cuda::table);
        assertSameNumbers(cpu, cuda);
        assertEquals(cpu.diagnoses().stream().map(d -> d.kind()).toList(),
                cuda.diagnoses().stream().map(d -> d.kind()).toList());
    }

    @Test
    void goodCandidatesFromElsewherePassOnCuda() {
        for (String file : List.of("grads_func_sum.pt", "grads_opacus_sum.pt")) {
            CheckReport report = mlpCheck(CUDA, candidateOn(CUDA, file, Reduction.SUM), Reduction.SUM);
            assertTrue(report.passed(), report::table);
        }
    }

    @Test
    void theEnginesGradientsStayOnTheDeviceAndMatchTheCpus() {
        for (GradSampler engine : List.of(Engines.vmap(), Engines.microbatch())) {
            try (Model cpuModel = mlpOn("cpu"); Model cudaModel = mlpOn(CUDA);
                 Batch cpuBatch = new Batch(Fixtures.inputs("mlp"), Fixtures.targets("mlp"), 0, 0, "cpu");
                 Batch cudaBatch = new Batch(Fixtures.inputs("mlp"), Fixtures.targets("mlp"), 0, 0, CUDA)) {
                assertEquals(CUDA, cudaBatch.device());
                Map<String, Tensor> onCpu = engine.perSampleGradients(cpuModel, cpuBatch, Loss.CROSS_ENTROPY, Reduction.MEAN);
                Map<String, Tensor> onCuda = engine.perSampleGradients(cudaModel, cudaBatch, Loss.CROSS_ENTROPY,
                        Reduction.MEAN);
                assertEquals(onCpu.keySet(), onCuda.keySet());
                onCuda.forEach((name, t) -> {
                    assertEquals(CUDA, Devices.of(t), engine.name() + " " + name);
                    try (Tensor host = t.cpu()) {
                        assertTrue(host.allclose(onCpu.get(name), RTOL, ATOL, false), engine.name() + " " + name);
                    }
                });
                dev.psg4j.bridge.Natives.closeAll(onCpu);
                dev.psg4j.bridge.Natives.closeAll(onCuda);
            }
        }
    }

    @Test
    void sketchModePassesAndCatchesOnCuda() {
        try (Model model = mlpOn(CUDA);
             PerSampleCheck check = FixtureMatrixTest.checkOf("mlp", model).reduction(Reduction.SUM)
                     .mode(CheckMode.SKETCH).seed(7).build()) {
            CheckReport good = check.run(candidateOn(CUDA, "grads_func_sum.pt", Reduction.SUM));
            assertTrue(good.passed(), good::table);
            CheckReport bad = check.run(candidateOn(CUDA, "bug_perturbed.pt", Reduction.SUM));
            assertFalse(bad.passed(), bad::table);
            assertEquals(CUDA, bad.device());
            assertNotNull(bad.sketch());
        }
    }

    @Test
    void theProbesGiveTheCpusFindingsOnCuda() {
        ProbeReport cpu, cuda;
        try (Model model = mlpOn("cpu"); Batch batch = new Batch(Fixtures.inputs("mlp"), List.of(), 0, 0, "cpu")) {
            cpu = Probes.report(model, batch, Probes.DEFAULT_PROBE_SAMPLES);
        }
        try (Model model = mlpOn(CUDA); Batch batch = new Batch(Fixtures.inputs("mlp"), List.of(), 0, 0, CUDA)) {
            cuda = Probes.report(model, batch, Probes.DEFAULT_PROBE_SAMPLES);
        }
        assertTrue(cuda.passed(), cuda::toString);
        assertEquals(cpu.passed(), cuda.passed());
        assertEquals(cpu.batchIndependent(), cuda.batchIndependent());
        assertEquals(cpu.deterministic(), cuda.deterministic());
    }

    /** An Opacus fixture's check with the model on CUDA (a copy of OpacusFixtures.check's, on the device). */
    private static CheckReport opacusOnCuda(String fixture, Reduction reduction,
                                            java.util.function.Function<PerSampleCheck, CheckReport> body) {
        JsonNode e = OpacusFixtures.SET.entry(fixture);
        try (Model model = Models.torchScript(OpacusFixtures.SET.file(fixture, "model.pt"), CUDA);
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(OpacusFixtures.SET.inputs(fixture))
                     .targets(OpacusFixtures.SET.targets(fixture)).loss(Loss.named(e.get("loss").asText()))
                     .reduction(reduction).build()) {
            return body.apply(check);
        }
    }

    @Test
    void normsAreCheckedOnCuda() {
        for (String file : List.of("ghost_norms_sum.pt", "ghost_param_norms_sum.pt", "norms_sum.pt")) {
            CheckReport report = opacusOnCuda("mlp", Reduction.SUM, c -> c.runNorms(NormSampler.precomputed(file,
                    Reduction.SUM, Devices.moveAll(OpacusFixtures.file("mlp", file), CUDA))));
            assertTrue(report.passed(), report::table);
            assertEquals(CUDA, report.device());
        }
        CheckReport bad = opacusOnCuda("mlp", Reduction.SUM, c -> c.runNorms(NormSampler.precomputed("swapped",
                Reduction.SUM, Devices.moveAll(OpacusFixtures.file("mlp", "bug_norms_swapped_sum.pt"), CUDA))));
        assertFalse(bad.passed(), bad::table);
    }

    @Test
    void clippedSumsAreCheckedOnCuda() {
        double c = OpacusFixtures.maxGradNorm("mlp", Reduction.SUM);
        CheckReport good = opacusOnCuda("mlp", Reduction.SUM, k -> k.runClippedSum(ClippedSumSampler.precomputed(
                "flat", Reduction.SUM, Devices.moveAll(OpacusFixtures.file("mlp", "summed_flat_sum.pt"), CUDA)),
                Clipping.flat(c)));
        assertTrue(good.passed(), good::table);
        CheckReport bad = opacusOnCuda("mlp", Reduction.SUM, k -> k.runClippedSum(ClippedSumSampler.precomputed(
                "not floored", Reduction.SUM, Devices.moveAll(OpacusFixtures.file("mlp", "bug_not_floored_sum.pt"),
                        CUDA)), Clipping.flat(c)));
        assertFalse(bad.passed(), bad::table);
    }

    @Test
    void cudaGraphsGiveTheEagerVerdictsOrSayWhyNot() {
        CheckReport eager = mlpCheck(CUDA, candidateOn(CUDA, "bug_perturbed.pt", Reduction.SUM), Reduction.SUM);
        CheckReport graphs;
        try (Model model = mlpOn(CUDA);
             PerSampleCheck check = FixtureMatrixTest.checkOf("mlp", model).reduction(Reduction.SUM).cudaGraphs(true)
                     .build()) {
            graphs = check.run(candidateOn(CUDA, "bug_perturbed.pt", Reduction.SUM));
        }
        String route = graphs.referenceRoute();
        assertTrue(route.equals("cuda graphs") || route.startsWith("cuda streams (graph capture failed"), route);
        assertSameNumbers(eager, graphs);
    }

    @Test
    void aCpuCandidateIsRefusedOnCuda() {
        BadInputException e = assertThrows(BadInputException.class, () -> mlpCheck(CUDA,
                Engines.precomputed("host grads", Reduction.SUM, Fixtures.grads("mlp", "grads_func_sum.pt")),
                Reduction.SUM));
        assertTrue(e.getMessage().contains("is on cpu but the check runs on cuda:0"), e.getMessage());
    }

    @Test
    void aCpuModelIsRefusedByACudaCheck() {
        try (Model model = mlpOn("cpu")) {
            BadInputException e = assertThrows(BadInputException.class,
                    () -> FixtureMatrixTest.checkOf("mlp", model).device("cuda").build());
            assertEquals("the model's parameters are on cpu but the check runs on cuda:0: move the model first "
                    + "(module.to(...)) or use device(\"cpu\")", e.getMessage());
        }
    }

    @Test
    void tf32IsOffWhileTheSamplerRunsAndRestoredAfter() {
        boolean before = ExactFloat32Scope.tf32Allowed();
        AtomicReference<Boolean> during = new AtomicReference<>();
        GradSampler recording = DeviceCheckTest.recordingTf32(during);
        try {
            NativeCore.set_tf32_allowed_for_tests(true);
            assertTrue(mlpCheck(CUDA, recording, Reduction.SUM).passed());
            assertFalse(during.get(), "TF32 was on while the sampler ran");
            assertTrue(ExactFloat32Scope.tf32Allowed(), "the run did not restore TF32");
        } finally {
            NativeCore.set_tf32_allowed_for_tests(before);
        }
    }

    @Test
    void deviceMemoryIsCountedOnCuda() {
        Devices.synchronize(CUDA);
        Devices.resetPeakMemory(CUDA);
        long before = Devices.memory(CUDA).allocatedBytes();
        try (Model model = mlpOn(CUDA)) {
            Devices.synchronize(CUDA);
            Devices.Memory after = Devices.memory(CUDA);
            assertTrue(after.allocatedBytes() > before, "the model's parameters are on the device");
            assertTrue(after.peakAllocatedBytes() >= after.allocatedBytes());
        }
    }
}
