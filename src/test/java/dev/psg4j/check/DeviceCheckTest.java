package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.Fixtures;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Devices, what runs on any machine: the one device parser and its messages, the check's
 * default device (the model's), the report's device and reference route, the mixed-device refusals
 * (with the meta device standing in for "another device": meta tensors exist on CPU builds too),
 * and the exact-float32 scope restoring the process's TF32 setting.
 */
class DeviceCheckTest {
    private static final String META = "meta";

    private static Model fixtureModel() {
        return Models.torchScript(Fixtures.file("mlp", "model.pt"));
    }

    private static PerSampleCheck.Builder mlpCheck(Model model) {
        return FixtureMatrixTest.checkOf("mlp", model);
    }

    private static Tensor onMeta(Tensor t) {
        try (Device meta = new Device(META)) {
            return t.to(meta, t.scalar_type());
        }
    }

    /** Asserts a one-line BadInputException whose message holds every one of {@code parts}. */
    private static void assertOneLine(BadInputException e, String... parts) {
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), () -> "'" + part + "' not in: " + e.getMessage());
        }
    }

    @Test
    void cpuSpellingsAreCanonical() {
        assertEquals("cpu", Devices.canonical("cpu"));
        assertEquals("cpu", Devices.canonical("CPU"));
        assertEquals("cpu", Devices.canonical(" cpu "));
    }

    @Test
    void unknownDevicesAreRefusedInOneLine() {
        for (String spec : List.of("gpu", "cuda:x", "cuda:", "cuda:-1", "cuda:0:1", "", "meta", "tpu")) {
            BadInputException e = assertThrows(BadInputException.class, () -> Devices.canonical(spec), spec);
            assertOneLine(e, "unknown device", "use cpu, cuda or cuda:N");
        }
        assertOneLine(assertThrows(BadInputException.class, () -> Devices.canonical(null)), "device is null");
    }

    @Test
    void cudaWithoutAVisibleDeviceSaysWhy() {
        if (Devices.cudaVisible()) {
            assertEquals("cuda:0", Devices.canonical("cuda"));
            assertEquals("cuda:0", Devices.canonical("CUDA:0"));
            BadInputException e = assertThrows(BadInputException.class, () -> Devices.canonical("cuda:999"));
            assertOneLine(e, "does not exist", "visible");
            return;
        }
        for (String spec : List.of("cuda", "cuda:0", "cuda:7")) {
            BadInputException e = assertThrows(BadInputException.class, () -> Devices.canonical(spec), spec);
            String why = NativeCore.cuda_runtime_loaded() ? "no CUDA device is visible" : "no CUDA support";
            assertOneLine(e, "device '" + spec + "'", why, "--device cpu");
        }
    }

    @Test
    void theBuilderRefusesABadDeviceAtOnce() {
        BadInputException e = assertThrows(BadInputException.class, () -> PerSampleCheck.builder().device("gpu"));
        assertOneLine(e, "unknown device 'gpu'");
    }

    @Test
    void hostMemoryCountersAreZeroAndSynchronizingIsANoOp() {
        Devices.synchronize("cpu");
        Devices.resetPeakMemory("cpu");
        assertEquals(new Devices.Memory(0, 0), Devices.memory("cpu"));
    }

    @Test
    void theCheckRunsOnTheModelsDeviceByDefaultAndReportsIt() throws Exception {
        try (Model model = fixtureModel(); PerSampleCheck check = mlpCheck(model).build()) {
            assertEquals("cpu", check.device());
            assertEquals("cpu", check.batch().device());
            CheckReport report = check.run(Engines.vmap());
            assertTrue(report.passed(), report::table);
            assertEquals("cpu", report.device());
            assertEquals("cpu workers", report.referenceRoute());
            JsonNode json = new ObjectMapper().readTree(report.toJson());
            assertEquals("cpu", json.get("device").asText());
            assertEquals("cpu workers", json.get("reference_route").asText());
            assertEquals(report, CheckReport.fromJson(report.toJson()));
        }
    }

    @Test
    void anExplicitCpuDeviceAndCudaGraphsOnTheCpuChangeNoVerdict() {
        try (Model model = fixtureModel();
             PerSampleCheck plain = mlpCheck(model).build();
             PerSampleCheck explicit = mlpCheck(model).device("cpu").cudaGraphs(true).build()) {
            CheckReport a = plain.run(Engines.vmap());
            CheckReport b = explicit.run(Engines.vmap());
            assertEquals(a.reductions(), b.reductions());
            assertEquals(a.device(), b.device());
            assertEquals(a.referenceRoute(), b.referenceRoute());
        }
    }

    @Test
    void aStepBatchIsMovedToTheChecksDevice() {
        try (Model model = fixtureModel(); PerSampleCheck check = mlpCheck(model).device("cpu").build()) {
            CheckReport report = check.run(Engines.vmap(), Fixtures.inputs("mlp"), Fixtures.targets("mlp"));
            assertTrue(report.passed(), report::table);
            assertEquals("cpu", report.device());
        }
    }

    @Test
    void aBatchOnADeviceHoldsItsTensorsThere() {
        try (Batch batch = new Batch(Fixtures.inputs("mlp"), Fixtures.targets("mlp"), 0, 0, "cpu")) {
            assertEquals("cpu", batch.device());
            assertEquals("cpu", Devices.of(batch.targets().get(0)));
        }
        BadInputException e = assertThrows(BadInputException.class,
                () -> new Batch(Fixtures.inputs("mlp"), List.of(), 0, 0, "gpu"));
        assertOneLine(e, "unknown device 'gpu'");
    }

    /** A two-parameter function model whose parameters are on {@code wDevice} and {@code bDevice}. */
    private static Model linearOn(boolean wOnMeta, boolean bOnMeta) {
        torch.manual_seed(3);
        Map<String, Tensor> params = new LinkedHashMap<>();
        Tensor w = torch.randn(2, 3);
        Tensor b = torch.randn(2);
        params.put("w", (wOnMeta ? onMeta(w) : w).requires_grad_(true));
        params.put("b", (bOnMeta ? onMeta(b) : b).requires_grad_(true));
        return Models.function("linear", params, (in, p) -> torch.matmul(in.get(0), p.get("w").t()).add(p.get("b")));
    }

    @Test
    void aModelOnAnotherDeviceIsRefusedNamingBoth() {
        try (Model model = linearOn(true, true)) {
            BadInputException e = assertThrows(BadInputException.class,
                    () -> PerSampleCheck.builder().model(model).inputs(torch.randn(4, 3)).device("cpu").build());
            assertOneLine(e, "the model's parameters are on meta but the check runs on cpu",
                    "move the model first (module.to(...)) or use device(\"meta\")");
        }
    }

    @Test
    void aModelOnADeviceNoCheckRunsOnIsRefusedByDefault() {
        try (Model model = linearOn(true, true)) {
            BadInputException e = assertThrows(BadInputException.class,
                    () -> PerSampleCheck.builder().model(model).inputs(torch.randn(4, 3)).build());
            assertOneLine(e, "the model's parameters are on meta", "module.to(...)");
        }
    }

    @Test
    void aModelSplitOverDevicesIsRefusedNamingTheParameter() {
        try (Model model = linearOn(false, true)) {
            BadInputException e = assertThrows(BadInputException.class,
                    () -> PerSampleCheck.builder().model(model).inputs(torch.randn(4, 3)).build());
            assertOneLine(e, "the model's parameter 'b' is on meta but the check runs on cpu", "1 of 2");
        }
    }

    /** The microbatch reference's gradients with {@code name}'s moved to the meta device. */
    private static GradSampler withOneOnMeta(String name) {
        return new GradSampler() {
            @Override
            public String name() {
                return "half on meta";
            }

            @Override
            public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
                Map<String, Tensor> grads = new LinkedHashMap<>(Engines.microbatch()
                        .perSampleGradients(model, batch, loss, reduction));
                grads.put(name, onMeta(grads.get(name)));
                return grads;
            }
        };
    }

    @Test
    void aCandidateOnAnotherDeviceIsRefusedNamingBoth() {
        try (Model model = fixtureModel(); PerSampleCheck check = mlpCheck(model).build()) {
            BadInputException e = assertThrows(BadInputException.class, () -> check.run(withOneOnMeta("2.bias")));
            assertOneLine(e, "the gradient '2.bias' from grad sampler 'half on meta' is on meta but the check runs "
                    + "on cpu");
        }
    }

    @Test
    void normsAndClippedSumsOnAnotherDeviceAreRefused() {
        String fixture = "mlp";
        Map<String, Tensor> norms = new LinkedHashMap<>(OpacusFixtures.file(fixture, "norms_sum.pt"));
        norms.replaceAll((k, t) -> onMeta(t));
        BadInputException n = assertThrows(BadInputException.class, () -> OpacusFixtures.check(fixture, Reduction.SUM,
                0, c -> c.runNorms(NormSampler.precomputed("meta norms", Reduction.SUM, norms))));
        assertOneLine(n, "from norm sampler 'meta norms' is on meta but the check runs on cpu");
        Map<String, Tensor> sum = new LinkedHashMap<>(OpacusFixtures.file(fixture, "summed_flat_sum.pt"));
        String first = sum.keySet().iterator().next();
        sum.put(first, onMeta(sum.get(first)));
        double c = OpacusFixtures.maxGradNorm(fixture, Reduction.SUM);
        BadInputException s = assertThrows(BadInputException.class, () -> OpacusFixtures.check(fixture, Reduction.SUM,
                0, k -> k.runClippedSum(ClippedSumSampler.precomputed("meta sum", Reduction.SUM, sum),
                        Clipping.flat(c))));
        assertOneLine(s, "the clipped sum '" + first + "' from clipped-sum sampler 'meta sum' is on meta");
    }

    @Test
    void exactFloat32ScopesNestAndRestoreTheProcessSetting() {
        boolean before = ExactFloat32Scope.tf32Allowed();
        try {
            NativeCore.set_tf32_allowed_for_tests(true);
            assertTrue(ExactFloat32Scope.tf32Allowed(), "the test hook turns TF32 on");
            try (ExactFloat32Scope outer = ExactFloat32Scope.open()) {
                assertFalse(ExactFloat32Scope.tf32Allowed(), "off inside a scope (the flags are process-wide on any build)");
                try (ExactFloat32Scope inner = ExactFloat32Scope.open()) {
                    assertFalse(ExactFloat32Scope.tf32Allowed());
                }
                assertFalse(ExactFloat32Scope.tf32Allowed(), "an inner scope's end leaves the outer one's");
                outer.close();  // a second close (by try-with-resources) does nothing
            }
            assertTrue(ExactFloat32Scope.tf32Allowed(), "the last scope restores the saved setting");
            NativeCore.set_tf32_allowed_for_tests(false);
            try (ExactFloat32Scope scope = ExactFloat32Scope.open()) {
                assertFalse(ExactFloat32Scope.tf32Allowed());
            }
            assertFalse(ExactFloat32Scope.tf32Allowed());
        } finally {
            NativeCore.set_tf32_allowed_for_tests(before);
        }
    }

    @Test
    void aRunHoldsTheScopeOverTheSamplerAndRestoresTheSetting() {
        boolean before = ExactFloat32Scope.tf32Allowed();
        AtomicReference<Boolean> duringSampler = new AtomicReference<>();
        GradSampler recording = recordingTf32(duringSampler);
        try (Model model = fixtureModel(); PerSampleCheck check = mlpCheck(model).build()) {
            NativeCore.set_tf32_allowed_for_tests(true);
            assertTrue(check.run(recording).passed());
            assertEquals(false, duringSampler.get(), "TF32 is off while the sampler runs");
            assertTrue(ExactFloat32Scope.tf32Allowed(), "the run restored the process's setting");
        } finally {
            NativeCore.set_tf32_allowed_for_tests(before);
        }
    }

    /** vmap, recording in {@code during} whether TF32 was allowed while it ran. */
    static GradSampler recordingTf32(AtomicReference<Boolean> during) {
        return new GradSampler() {
            @Override
            public String name() {
                return "recording";
            }

            @Override
            public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
                during.set(ExactFloat32Scope.tf32Allowed());
                return Engines.vmap().perSampleGradients(model, batch, loss, reduction);
            }
        };
    }
}
