package dev.psg4j.model;

import dev.psg4j.BadInputException;
import dev.psg4j.check.Batch;
import dev.psg4j.check.Loss;
import dev.psg4j.junit.PerSampleAssertions;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Probes;
import dev.psg4j.check.Reduction;
import dev.psg4j.engine.Engines;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.ProbeReport;

import org.bytedeco.pytorch.AnyModule;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.ReLUImpl;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A user's own C++-frontend layer (a learnable per-feature scale, y = x * scale + shift),
 * registered with {@link FrontendLayers}: checked by the vmap engine and the microbatch
 * reference, inside a Sequential and as the model itself; a planted wrong candidate fails; bad
 * registrations and unknown layers are BadInputExceptions that say what is registered.
 */
class FrontendLayersTest {
    private static final String SCALE = "psg4j.test.Scale";
    private static final long B = 5;

    @BeforeAll
    static void registerScale() {
        if (!FrontendLayers.registered().contains(SCALE)) {
            FrontendLayers.register(SCALE, List.of("scale", "shift"),
                    (x, p) -> x.mul(p.get("scale")).add(p.get("shift")));
        }
    }

    private static Tensor parameter(Tensor t) {
        return t.requires_grad_(true);
    }

    private static Map<String, Tensor> scaleParameters(long features) {
        Map<String, Tensor> p = new LinkedHashMap<>();
        p.put("scale", parameter(torch.randn(features)));
        p.put("shift", parameter(torch.randn(features)));
        return p;
    }

    private static SequentialImpl withScale(AnyModule scale) {
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("fc", new LinearImpl(4, 3));
        seq.push_back("scale", scale);
        seq.push_back("act", new ReLUImpl());
        seq.push_back("out", new LinearImpl(3, 2));
        return seq;
    }

    private static PerSampleCheck check(Model model, Reduction... reductions) {
        return PerSampleCheck.builder().model(model).inputs(torch.randn(B, 4)).targets(torch.randn(B, 2))
                .loss(Loss.MSE).reductions(reductions).build();
    }

    @Test
    void aUsersLayerInASequentialPassesOnTheVmapEngineAndTheReference() {
        torch.manual_seed(1);
        SequentialImpl seq = withScale(FrontendLayers.layer(SCALE, scaleParameters(3)));
        try (Model model = Models.module(seq); PerSampleCheck check = check(model, Reduction.SUM, Reduction.MEAN)) {
            assertEquals(List.of("fc.weight", "fc.bias", "scale.scale", "scale.shift", "out.weight", "out.bias"),
                    List.copyOf(model.trainableParameters().keySet()));
            PerSampleAssertions.assertCorrect(check.run(Engines.vmap()));
            PerSampleAssertions.assertCorrect(check.run(Engines.microbatch()));
            Map<String, Tensor> grads = Engines.vmap().perSampleGradients(model, check.batch(), check.loss(),
                    Reduction.SUM);
            assertEquals(List.of(B, 3L), List.of(grads.get("scale.scale").size(0), grads.get("scale.scale").size(1)));
            assertTrue(grads.get("scale.scale").abs().sum().item_double() > 0, "the scale has gradients");
        }
    }

    @Test
    void theProbesRunTheUsersLayerAndFindNothing() {
        torch.manual_seed(7);
        SequentialImpl seq = withScale(FrontendLayers.layer(SCALE, scaleParameters(3)));
        try (Model model = Models.module(seq); Batch batch = Batch.of(torch.randn(8, 4))) {
            ProbeReport report = Probes.report(model, batch, Probes.DEFAULT_PROBE_SAMPLES);
            assertTrue(report.passed() && report.diagnoses().isEmpty(), report::toJson);
        }
    }

    @Test
    void aPlantedWrongCandidateForTheUsersLayerFails() {
        torch.manual_seed(2);
        SequentialImpl seq = withScale(FrontendLayers.layer(SCALE, scaleParameters(3)));
        try (Model model = Models.module(seq); PerSampleCheck check = check(model, Reduction.SUM)) {
            Map<String, Tensor> grads = new LinkedHashMap<>(Engines.vmap().perSampleGradients(model, check.batch(),
                    check.loss(), Reduction.SUM));
            PerSampleAssertions.assertCorrect(check.run(Engines.precomputed("right", Reduction.SUM, grads)));
            grads.put("scale.scale", grads.get("scale.scale").mul(new Scalar(1.5)));
            CheckReport report = check.run(Engines.precomputed("scaled", Reduction.SUM, grads));
            assertFalse(report.passed(), report::table);
            String row = report.table().lines().filter(l -> l.contains("scale.scale")).findFirst().orElse("");
            assertTrue(row.contains("MISMATCH"), report::table);
            String shiftRow = report.table().lines().filter(l -> l.contains("scale.shift")).findFirst().orElse("");
            assertFalse(shiftRow.contains("MISMATCH"), report::table);
        }
    }

    @Test
    void aJavaModuleOfTheTypeIsTheModelItselfAndIsNeverWritten() {
        torch.manual_seed(3);
        Module scale = new Module(SCALE);
        scale.register_parameter("scale", torch.randn(4), true);
        scale.register_parameter("shift", torch.randn(4), true);
        Tensor before = scale.named_parameters().get("scale").clone();
        try (Model model = Models.module(scale);
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(torch.randn(B, 4))
                     .targets(torch.randn(B, 4)).loss(Loss.MSE).build()) {
            assertEquals(List.of("scale", "shift"), List.copyOf(model.trainableParameters().keySet()));
            PerSampleAssertions.assertCorrect(check.run(Engines.vmap()));
            PerSampleAssertions.assertCorrect(check.run(Engines.microbatch()));
        }
        Tensor after = scale.named_parameters().get("scale");
        assertTrue(torch.equal(before, after) && after.requires_grad(),
                "the caller's module keeps its own parameter");
    }

    @Test
    void aJavaModuleJoinsASequentialSharingItsTensors() {
        torch.manual_seed(4);
        Module scale = new Module(SCALE);
        // A handle of our own: register_parameter returns a reference into the module's parameter
        // list, which registering "shift" may reallocate (a dangling read, an intermittent SIGSEGV).
        Tensor own = torch.randn(3);
        scale.register_parameter("scale", own, true);
        scale.register_parameter("shift", torch.randn(3), true);
        SequentialImpl seq = withScale(FrontendLayers.layer(scale));
        try (Model model = Models.module(seq); PerSampleCheck check = check(model, Reduction.MEAN)) {
            Tensor inModel = model.trainableParameters().get("scale.scale");
            assertEquals(own.data_ptr().address(), inModel.data_ptr().address(), "the very tensor, not a copy");
            PerSampleAssertions.assertCorrect(check.run(Engines.vmap()));
        }
    }

    @Test
    void anUnregisteredLayerIsBadInputListingTheRegisteredTypes() {
        torch.manual_seed(5);
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("fc", new LinearImpl(4, 3));
        Module custom = new Module("psg4j.test.Unregistered");
        custom.register_parameter("w", torch.ones(3), true);
        seq.register_module("custom", custom);
        try (Model model = Models.module(seq);
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(torch.randn(B, 4)).build()) {
            BadInputException e = assertThrows(BadInputException.class, () -> check.run(Engines.vmap()));
            String message = e.getMessage();
            for (String part : List.of("psg4j.test.Unregistered", "Linear", "Conv2d", "LSTM", "MultiheadAttention",
                    SCALE, "FrontendLayers.register", "microbatch")) {
                assertTrue(message.contains(part), () -> part + " missing: " + message);
            }
            assertFalse(message.contains("\n"), "one line");
        }
        assertTrue(FrontendLayers.registered().containsAll(List.of("Linear", "Bilinear", "GRU", SCALE)),
                FrontendLayers.registered()::toString);
        assertFalse(FrontendLayers.registered().contains("ReLU"), "parameter-free layers keep nothing to swap");
    }

    @Test
    void badRegistrationsAndLayersAreBadInput() {
        FrontendLayers.LayerForward identity = (x, p) -> x;
        assertBad(() -> FrontendLayers.register(SCALE, List.of("scale"), identity), "registered already");
        assertBad(() -> FrontendLayers.register("Linear", List.of("weight"), identity), "standard");
        assertBad(() -> FrontendLayers.register("torch::nn::LinearImpl", List.of("weight"), identity), "standard");
        assertBad(() -> FrontendLayers.register("psg4j.test.NoSlots", List.of(), identity), "1 to 64");
        assertBad(() -> FrontendLayers.register("psg4j.test.Twice", List.of("w", "w"), identity), "twice");
        assertBad(() -> FrontendLayers.register("psg4j.test.Dotted", List.of("a.b"), identity), "character");
        assertBad(() -> FrontendLayers.register("", List.of("w"), identity), "1 to 200");
        assertBad(() -> FrontendLayers.register("x".repeat(201), List.of("w"), identity), "at most 200");
        assertBad(() -> FrontendLayers.register("psg4j.test.NoForward", List.of("w"), null), "forward");
        assertBad(() -> FrontendLayers.layer("psg4j.test.Nothing", Map.of()), "no layer type psg4j.test.Nothing");
        assertBad(() -> FrontendLayers.layer(SCALE, Map.of("scale", torch.ones(3))), "lacks its parameter 'shift'");
        assertBad(() -> FrontendLayers.layer(SCALE, Map.of("scale", torch.ones(3), "shift", torch.ones(3),
                "extra", torch.ones(3))), "no parameter slot 'extra'");
        Module withBuffer = new Module(SCALE);
        withBuffer.register_parameter("scale", torch.ones(3), true);
        withBuffer.register_parameter("shift", torch.ones(3), true);
        withBuffer.register_buffer("count", torch.zeros(1));
        assertBad(() -> FrontendLayers.layer(withBuffer), "buffers");
        assertFalse(FrontendLayers.registered().contains("psg4j.test.NoSlots"), "a refused type is not registered");
    }

    private static void assertBad(Runnable body, String part) {
        BadInputException e = assertThrows(BadInputException.class, body::run);
        assertTrue(e.getMessage().contains(part), () -> "'" + part + "' missing: " + e.getMessage());
    }

    @Test
    void anExceptionOfTheLayersForwardIsRethrown() {
        String throwing = "psg4j.test.Throwing";
        if (!FrontendLayers.registered().contains(throwing)) {
            FrontendLayers.register(throwing, List.of("w"), (x, p) -> {
                throw new IllegalStateException("the user's forward failed");
            });
        }
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("fc", new LinearImpl(4, 3));
        seq.push_back("bad", FrontendLayers.layer(throwing, Map.of("w", parameter(torch.ones(3)))));
        try (Model model = Models.module(seq); Batch batch = Batch.of(torch.randn(B, 4))) {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> Engines.microbatch().perSampleGradients(model, batch, Loss.L1, Reduction.SUM));
            assertEquals("the user's forward failed", e.getMessage());
        }
    }

    @Test
    void registrationsWhileModelsRunAreSafe() throws Exception {
        torch.manual_seed(6);
        SequentialImpl seq = withScale(FrontendLayers.layer(SCALE, scaleParameters(3)));
        ExecutorService pool = Executors.newFixedThreadPool(3);
        try (Model model = Models.module(seq); Batch batch = Batch.of(torch.randn(B, 4))) {
            Map<String, Tensor> expected = Engines.vmap().perSampleGradients(model, batch, Loss.L1, Reduction.SUM);
            List<Future<?>> running = new ArrayList<>();
            for (int t = 0; t < 2; t++) {
                running.add(pool.submit(() -> {
                    for (int k = 0; k < 5; k++) {
                        Map<String, Tensor> grads = Engines.vmap().perSampleGradients(model, batch, Loss.L1,
                                Reduction.SUM);
                        assertTrue(torch.allclose(grads.get("scale.scale"), expected.get("scale.scale")));
                    }
                }));
            }
            running.add(pool.submit(() -> {
                for (int k = 0; k < 20; k++) {
                    FrontendLayers.register("psg4j.test.Concurrent" + k + "_" + System.nanoTime(), List.of("w"),
                            (x, p) -> x.mul(p.get("w")));
                }
            }));
            for (Future<?> f : running) {
                f.get(120, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
