package dev.psg4j.check;

import dev.psg4j.bench.Suite;
import dev.psg4j.engine.Engines;
import dev.psg4j.junit.PerSampleAssertions;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.ParamReport;
import dev.psg4j.report.ReductionReport;
import dev.psg4j.report.SketchSummary;
import dev.psg4j.report.SketchZone;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * A sketch projected in float first: clean gradients pass without the reference, at the cost of a
 * float forward and K float backwards where float decides every parameter; what float leaves
 * undecided is projected again in double, what fails goes to the reference; errors far above the
 * tolerance are caught as in double, and the report says which precision decided.
 */
class FloatFirstSketchTest {
    private static final long SEED = 20261208L;

    private static PerSampleCheck.Builder floatFirst(Suite suite) {
        return PerSampleCheck.builder().model(suite.model()).inputs(suite.input()).mode(CheckMode.SKETCH)
                .sketchPrecision(SketchPrecision.FLOAT_FIRST).seed(SEED);
    }

    /** What the summary says about the passes that ran, consistent with what they cost. */
    private static void assertCostMatchesPrecision(SketchSummary sketch, int projections, int sources) {
        assertEquals("float-first", sketch.precision());
        if (sketch.doubleParams() == 0) {
            assertEquals("float", sketch.referencePrecision());
            assertEquals(1, sketch.forwards());
            assertEquals((long) projections * sources, sketch.backwards());
        } else {
            assertEquals("float, then double", sketch.referencePrecision());
            assertEquals(2, sketch.forwards());
            assertEquals(2L * projections * sources, sketch.backwards());
        }
    }

    /**
     * Clean gradients of every suite model pass without the reference; at B = 32 float decides every
     * parameter (one float forward, K float backwards for both reductions).
     */
    @ParameterizedTest(name = "{0} B={1}")
    @MethodSource("dev.psg4j.check.SketchModeTest#suiteAtBatchSizes")
    void cleanVmapGradientsPassWithoutTheReference(String name, long batch) {
        try (Suite suite = Suite.build(name, batch); PerSampleCheck check = floatFirst(suite).build()) {
            CheckReport report = check.run(Engines.vmap());
            PerSampleAssertions.assertCorrect(report);
            assertEquals(0, report.sketch().exactParams(), report::toJson);
            assertCostMatchesPrecision(report.sketch(), PerSampleCheck.DEFAULT_PROJECTIONS, 1);
            if (batch == 32) {
                assertEquals(0, report.sketch().doubleParams(), () -> "float decides a clean suite model at B = 32: "
                        + report.toJson());
            }
            for (ReductionReport r : report.reductions()) {
                for (ParamReport p : r.params()) {
                    assertEquals(SketchZone.PASS, p.sketchZone(), p.name());
                }
            }
        }
    }

    /**
     * Two samples' gradients swapped (what a model that moves the batch dimension hands a sampler):
     * far outside what allclose allows in aggregate, so float sends the parameters straight to the
     * reference, which names both samples; no double projections.
     */
    @Test
    void swappedSamplesGoFromFloatStraightToTheReference() {
        try (Suite suite = Suite.build("cnn", 32); Batch batch = Batch.of(suite.input());
             PerSampleCheck check = floatFirst(suite).reduction(Reduction.SUM).build()) {
            Map<String, Tensor> grads = SketchModeTest.contiguous(Engines.vmap().perSampleGradients(suite.model(), batch, Loss.L1,
                    Reduction.SUM));
            for (Tensor g : grads.values()) {
                try (Tensor third = g.select(0, 3).clone(); Tensor seventh = g.select(0, 7)) {
                    g.select(0, 3).copy_(seventh);
                    seventh.copy_(third);
                }
            }
            CheckReport report = check.run(Engines.precomputed("swapped", Reduction.SUM, grads));
            assertFalse(report.passed());
            for (ParamReport p : report.reductions().get(0).params()) {
                assertEquals(SketchZone.FAIL, p.sketchZone(), p.name());
                assertEquals(List.of(3, 7), p.badSamples(), p.name());
            }
            assertEquals("float", report.sketch().referencePrecision(), report::toJson);
            assertEquals(0, report.sketch().doubleParams());
            assertEquals(1, report.sketch().forwards());
            grads.values().forEach(Tensor::close);
        }
    }

    /**
     * One element off by 8 typical tolerances: above float's pass window, far below the fail zone,
     * so float leaves its parameter undecided; the double projections cannot pass it either, and
     * the reference names the sample. Only that parameter is projected again.
     */
    @Test
    void whatFloatLeavesUndecidedIsProjectedInDouble() {
        try (Suite suite = Suite.build("mlp", 32); Batch batch = Batch.of(suite.input());
             PerSampleCheck check = floatFirst(suite).reduction(Reduction.SUM).build()) {
            Map<String, Tensor> grads = SketchModeTest.contiguous(Engines.vmap().perSampleGradients(suite.model(), batch, Loss.L1,
                    Reduction.SUM));
            Tensor weight = grads.get("2.weight");
            long element = 17;
            double rms = Math.sqrt(weight.flatten(1, -1).select(1, element).square().mean().item_double());
            double typical = Tolerance.DEFAULT.atol() + Tolerance.DEFAULT.rtol() * rms;
            weight.select(0, 5).flatten().narrow(0, element, 1).add_(new Scalar(8 * typical));
            CheckReport report = check.run(Engines.precomputed("planted", Reduction.SUM, grads));
            assertFalse(report.passed());
            assertEquals(List.of("sum/2.weight/5"), report.failures().stream()
                    .map(f -> f.reduction() + "/" + f.param() + "/" + f.sample()).toList(), report::summary);
            assertEquals("float, then double", report.sketch().referencePrecision(), report::toJson);
            assertEquals(1, report.sketch().doubleParams(), report::toJson);
            assertEquals(1, report.sketch().exactParams(), report::toJson);
            assertCostMatchesPrecision(report.sketch(), PerSampleCheck.DEFAULT_PROJECTIONS, 1);
            grads.values().forEach(Tensor::close);
        }
    }

    /**
     * The stated guarantee at M = 100: one element off by 100 × (atol + rtol·|ref|) escapes with
     * probability at most 100^-2 per projection pair, so every planted element — in every parameter
     * of every suite model at B = 256, fresh seeds — is caught and its sample named.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.psg4j.check.SketchModeTest#suiteNames")
    void oneElementOffByAHundredTolerancesIsCaughtAtB256(String name) {
        SplittableRandom random = new SplittableRandom(name.hashCode() + 1);
        try (Suite suite = Suite.build(name, 256); Batch batch = Batch.of(suite.input());
             PerSampleCheck check = PerSampleCheck.builder().model(suite.model()).inputs(suite.input())
                     .reduction(Reduction.SUM).mode(CheckMode.SKETCH).sketchPrecision(SketchPrecision.FLOAT_FIRST)
                     .build()) {
            Map<String, Tensor> clean = SketchModeTest.contiguous(Engines.vmap().perSampleGradients(suite.model(), batch, Loss.L1,
                    Reduction.SUM));
            for (String param : clean.keySet()) {
                Tensor g = clean.get(param);
                long sample = random.nextLong(256);
                long element = random.nextLong(g.numel() / 256);
                Map<String, Tensor> planted = new LinkedHashMap<>();
                clean.forEach((k, v) -> planted.put(k, v.clone()));
                SketchModeTest.plantOff(planted.get(param), g, sample, element, 100);
                CheckReport report = check.run(Engines.precomputed("planted", Reduction.SUM, planted));
                String where = name + " " + param + " sample " + sample + " element " + element + " seed "
                        + report.sketch().seed();
                assertFalse(report.passed(), where);
                assertEquals(List.of(name + "/" + param + "/" + sample), report.failures().stream()
                        .map(f -> name + "/" + f.param() + "/" + f.sample()).toList(), where);
                planted.values().forEach(Tensor::close);
            }
            clean.values().forEach(Tensor::close);
        }
    }
}
