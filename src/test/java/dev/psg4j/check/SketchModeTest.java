package dev.psg4j.check;

import dev.psg4j.junit.PerSampleAssertions;
import com.fasterxml.jackson.databind.JsonNode;

import dev.psg4j.Fixtures;
import dev.psg4j.FixtureSet;
import dev.psg4j.BadInputException;
import dev.psg4j.UnsupportedModelException;
import dev.psg4j.bench.Suite;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.Failure;
import dev.psg4j.report.ParamReport;
import dev.psg4j.report.ReductionReport;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Sketch mode gives exact mode's verdict: on every fixture candidate (clean ones from torch.func
 * and Opacus, planted bugs) and every layer-matrix case, with the same failing parameters, kinds
 * and samples; it catches one element off by 10 × its tolerance at B = 256 on every suite model;
 * and on clean vmap gradients of the suite it decides everything at sketch cost.
 */
class SketchModeTest {
    private static final long SEED = 20261201L;

    @ParameterizedTest(name = "{0} / {1}")
    @MethodSource("dev.psg4j.check.FixtureMatrixTest#candidates")
    void sameVerdictAsExactOnEveryFixtureCandidate(String fixture, String candidateFile) {
        JsonNode expected = Fixtures.entry(fixture).get("candidates").get(candidateFile);
        Reduction reduction = Reduction.valueOf(expected.get("reduction").asText().toUpperCase(Locale.ROOT));
        try (Model model = Models.torchScript(Fixtures.file(fixture, "model.pt"));
             PerSampleCheck exact = FixtureMatrixTest.checkOf(fixture, model).reduction(reduction).build();
             PerSampleCheck sketch = FixtureMatrixTest.checkOf(fixture, model).reduction(reduction)
                     .mode(CheckMode.SKETCH).seed(SEED).build()) {
            CheckReport exactReport = exact.run(Engines.precomputed(candidateFile, reduction,
                    Fixtures.grads(fixture, candidateFile)));
            CheckReport sketchReport = sketch.run(Engines.precomputed(candidateFile, reduction,
                    Fixtures.grads(fixture, candidateFile)));
            assertSameVerdict(exactReport, sketchReport);
            assertEquals(expected.get("expect_pass").asBoolean(), sketchReport.passed(), sketchReport::table);
        }
    }

    static List<String> matrixCases() {
        return Fixtures.LAYER_MATRIX.names();
    }

    /** Clean candidates (Python's torch.func or loop) on every layer kind, both reductions. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("matrixCases")
    void sameVerdictAsExactOnTheLayerMatrix(String name) {
        FixtureSet matrix = Fixtures.LAYER_MATRIX;
        JsonNode entry = matrix.entry(name);
        for (Reduction reduction : Reduction.values()) {
            String file = "grads_" + reduction.label() + ".pt";
            try (Model model = Models.torchScript(matrix.file(name, "model.pt"));
                 PerSampleCheck exact = matrixCheck(matrix, name, entry, model).reduction(reduction).build();
                 PerSampleCheck sketch = matrixCheck(matrix, name, entry, model).reduction(reduction)
                         .mode(CheckMode.SKETCH).seed(SEED).build()) {
                CheckReport exactReport = run(exact, file, reduction, matrix, name);
                CheckReport sketchReport = run(sketch, file, reduction, matrix, name);
                assertSameVerdict(exactReport, sketchReport);
            } catch (UnsupportedModelException e) {
                // a custom construct the batched forward cannot serve is refused, never misjudged
                assertTrue(e.getMessage().contains("exact"), e::getMessage);
            }
        }
    }

    private static PerSampleCheck.Builder matrixCheck(FixtureSet matrix, String name, JsonNode entry, Model model) {
        return PerSampleCheck.builder().model(model).inputs(matrix.inputs(name)).targets(matrix.targets(name))
                .batchDim(entry.get("batch_dim").asInt()).targetBatchDim(0)
                .loss(Loss.named(entry.get("loss").asText()));
    }

    private static CheckReport run(PerSampleCheck check, String file, Reduction reduction, FixtureSet set, String name) {
        return check.run(Engines.precomputed(file, reduction, set.grads(name, file)));
    }

    /** Same verdict, same failing (reduction, parameter, sample, kind), same bad samples. */
    static void assertSameVerdict(CheckReport exact, CheckReport sketch) {
        assertEquals("sketch", sketch.mode());
        assertEquals(CheckReport.SCHEMA_VERSION, sketch.schemaVersion());
        assertEquals(exact.passed(), sketch.passed(), () -> "exact:\n" + exact.table() + "\nsketch:\n" + sketch.table());
        assertEquals(keys(exact.failures()), keys(sketch.failures()), sketch::summary);
        assertEquals(exact.diagnoses().stream().map(d -> d.kind()).toList(),
                sketch.diagnoses().stream().map(d -> d.kind()).toList());
        for (int r = 0; r < exact.reductions().size(); r++) {
            ReductionReport e = exact.reductions().get(r), s = sketch.reductions().get(r);
            assertEquals(e.passed(), s.passed());
            for (int p = 0; p < e.params().size(); p++) {
                ParamReport ep = e.params().get(p), sp = s.params().get(p);
                assertEquals(ep.name(), sp.name());
                assertEquals(ep.passed(), sp.passed(), sp.name());
                assertEquals(ep.badSamples(), sp.badSamples(), sp.name());
                if (!sp.passed() && sp.status() == dev.psg4j.report.ParamStatus.COMPARED) {
                    assertNotNull(sp.sampleMaxTolRatio(), "a failing parameter keeps its per-sample fields");
                }
            }
        }
    }

    private static List<String> keys(List<Failure> failures) {
        return failures.stream().map(f -> f.reduction() + "/" + f.param() + "/" + f.sample() + "/" + f.kind()).toList();
    }

    static Stream<Arguments> suiteAtBatchSizes() {
        List<Arguments> out = new ArrayList<>();
        for (String name : Suite.NAMES) {
            out.add(Arguments.of(name, 32L));
            out.add(Arguments.of(name, 256L));
        }
        return out.stream();
    }

    /** The clean case stays at sketch cost: no parameter needs the reference, per-sample fields are null. */
    @ParameterizedTest(name = "{0} B={1}")
    @MethodSource("suiteAtBatchSizes")
    void cleanVmapGradientsPassAtSketchCost(String name, long batch) {
        try (Suite suite = Suite.build(name, batch);
             PerSampleCheck check = PerSampleCheck.builder().model(suite.model()).inputs(suite.input())
                     .mode(CheckMode.SKETCH).build()) {
            CheckReport report = check.run(Engines.vmap());
            PerSampleAssertions.assertCorrect(report);
            assertEquals(0, report.sketch().exactParams(), report::toJson);
            assertEquals(1, report.sketch().forwards());
            assertEquals("double", report.sketch().referencePrecision());
            assertEquals(2, report.sketch().backwards(), "both reductions share the projections' backwards");
            for (ReductionReport r : report.reductions()) {
                for (ParamReport p : r.params()) {
                    assertEquals(dev.psg4j.report.SketchZone.PASS, p.sketchZone());
                    assertNull(p.sampleMaxTolRatio());
                    assertNull(p.maxAbsErr());
                    assertTrue(p.sketchResidualRatio() <= 1.0);
                }
            }
            assertTrue(report.toJson().contains("\"mode\" : \"sketch\""), report::toJson);
        }
    }

    /**
     * One element of one sample off by 10 × (atol + rtol·|ref|) at B = 256 fails the sketch, and the
     * report names that parameter and that sample only — for planted elements drawn at random in
     * every parameter of every suite model, each with a fresh sketch seed.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("suiteNames")
    void oneElementOffByTenTolerancesIsCaughtAtB256(String name) {
        SplittableRandom random = new SplittableRandom(name.hashCode());
        try (Suite suite = Suite.build(name, 256);
             Batch batch = Batch.of(suite.input());
             PerSampleCheck check = PerSampleCheck.builder().model(suite.model()).inputs(suite.input())
                     .reduction(Reduction.SUM).mode(CheckMode.SKETCH).build()) {
            Map<String, Tensor> reference = Engines.microbatch().perSampleGradients(suite.model(), batch, Loss.L1,
                    Reduction.SUM);
            for (String param : reference.keySet()) {
                Tensor ref = reference.get(param);
                long sample = random.nextLong(256);
                long element = random.nextLong(ref.numel() / 256);
                Map<String, Tensor> planted = contiguous(Engines.vmap().perSampleGradients(suite.model(), batch,
                        Loss.L1, Reduction.SUM));
                plantOff(planted.get(param), ref, sample, element, 10);
                CheckReport report = check.run(Engines.precomputed("planted", Reduction.SUM, planted));
                String where = name + " " + param + " sample " + sample + " element " + element + " seed "
                        + report.sketch().seed();
                assertFalse(report.passed(), where);
                ParamReport p = report.reductions().get(0).params().stream().filter(r -> r.name().equals(param))
                        .findFirst().orElseThrow();
                assertEquals(List.of((int) sample), p.badSamples(), where);
                assertEquals(1, report.failures().size(), () -> where + "\n" + report.summary());
                planted.values().forEach(Tensor::close);
            }
            reference.values().forEach(Tensor::close);
        }
    }

    /**
     * A training loop's check: one sketch check reused over steps, both reductions' gradients
     * computed before and handed over together; a sample made wrong in the mean candidate alone is
     * named there, and a reduction the candidate lacks is refused in one line.
     */
    @Test
    void aReusedCheckOfBothReductionsFromPrecomputedGradients() {
        try (Suite suite = Suite.build("mlp", 32);
             PerSampleCheck check = PerSampleCheck.builder().model(suite.model()).inputs(suite.input()).loss(Loss.L1)
                     .reductions(Reduction.SUM, Reduction.MEAN).mode(CheckMode.SKETCH).build();
             Batch batch = Batch.of(suite.input())) {
            Map<Reduction, Map<String, Tensor>> grads = new java.util.EnumMap<>(Reduction.class);
            for (Reduction r : Reduction.values()) {
                grads.put(r, contiguous(Engines.vmap().perSampleGradients(suite.model(), batch, Loss.L1, r)));
            }
            for (int step = 0; step < 3; step++) {
                CheckReport report = check.run(Engines.precomputed("steps", grads));
                assertTrue(report.passed(), report::summary);
                assertEquals(0, report.sketch().exactParams(), report::summary);
            }
            try (Tensor sample = grads.get(Reduction.MEAN).get("2.bias").select(0, 5)) {
                sample.add_(new Scalar(0.5));
            }
            CheckReport wrong = check.run(Engines.precomputed("steps", grads));
            assertFalse(wrong.passed());
            assertEquals(List.of("mean/2.bias/5"), wrong.failures().stream()
                    .map(f -> f.reduction() + "/" + f.param() + "/" + f.sample()).toList(), wrong::summary);
            BadInputException missing = assertThrows(BadInputException.class, () -> check.run(
                    Engines.precomputed("sum only", Map.of(Reduction.SUM, grads.get(Reduction.SUM)))));
            assertTrue(missing.getMessage().contains("reduction mean was asked"), missing::getMessage);
            grads.values().forEach(m -> m.values().forEach(Tensor::close));
        }
    }

    /**
     * Adds {@code tolerances} × (atol + rtol·|ref|) to one element of one sample of {@code
     * candidate} (contiguous: select and flatten are views, so the write lands in it).
     */
    static void plantOff(Tensor candidate, Tensor ref, long sample, long element, double tolerances) {
        double at = Math.abs(ref.select(0, sample).flatten().select(0, element).item_double());
        double off = tolerances * (Tolerance.DEFAULT.atol() + Tolerance.DEFAULT.rtol() * at);
        candidate.select(0, sample).flatten().narrow(0, element, 1).add_(new Scalar(off));
    }

    static Map<String, Tensor> contiguous(Map<String, Tensor> grads) {
        Map<String, Tensor> out = new java.util.LinkedHashMap<>();
        grads.forEach((k, v) -> {
            out.put(k, v.contiguous());
            v.close();
        });
        return out;
    }

    static List<String> suiteNames() {
        return Suite.NAMES;
    }

    @Test
    void aFixedSeedReproducesTheReportAndAFreshOneIsRecorded() {
        try (Suite suite = Suite.build("mlp", 16);
             PerSampleCheck fixed = PerSampleCheck.builder().model(suite.model()).inputs(suite.input())
                     .mode(CheckMode.SKETCH).seed(7).build();
             PerSampleCheck fresh = PerSampleCheck.builder().model(suite.model()).inputs(suite.input())
                     .mode(CheckMode.SKETCH).build()) {
            CheckReport first = fixed.run(Engines.vmap());
            assertEquals(7, first.sketch().seed());
            assertEquals(first.toJson(), fixed.run(Engines.vmap()).toJson());
            assertTrue(fresh.run(Engines.vmap()).sketch().seed() != fresh.run(Engines.vmap()).sketch().seed());
        }
    }

    @Test
    void sketchNeedsTheProbes() {
        try (Suite suite = Suite.build("mlp", 4)) {
            BadInputException e = assertThrows(BadInputException.class, () -> PerSampleCheck.builder()
                    .model(suite.model()).inputs(suite.input()).mode(CheckMode.SKETCH).probes(false).build());
            assertTrue(e.getMessage().contains("probes") && e.getMessage().contains("EXACT"), e::getMessage);
        }
    }

    @Test
    void projectionsAreBounded() {
        assertThrows(BadInputException.class, () -> PerSampleCheck.builder().projections(0));
        assertThrows(BadInputException.class, () -> PerSampleCheck.builder().projections(PerSampleCheck.MAX_PROJECTIONS + 1));
    }

    /** A custom loss that cannot be vmapped over samples is refused in one line that says what to do. */
    @Test
    void aCustomLossThatCannotBeVmappedIsRefused() {
        Loss itemLoss = Loss.custom("item_scaled", (output, targets, reduction) -> {
            double scale = output.abs().max().item_double();  // .item(): no per-sample form under vmap
            return output.abs().sum().mul(new Scalar(scale));
        });
        try (Suite suite = Suite.build("mlp", 8);
             PerSampleCheck check = PerSampleCheck.builder().model(suite.model()).inputs(suite.input()).loss(itemLoss)
                     .mode(CheckMode.SKETCH).build()) {
            UnsupportedModelException e = assertThrows(UnsupportedModelException.class,
                    () -> check.run(Engines.microbatch()));
            assertTrue(e.getMessage().startsWith("sketch mode needs each sample's loss"), e::getMessage);
            assertTrue(e.getMessage().contains("--mode exact"), e::getMessage);
        }
    }

    /** A vmap-compatible custom loss is sketched (its reductions take separate backwards) and passes. */
    @Test
    void aVmappableCustomLossIsSketched() {
        Loss squares = Loss.custom("squares", (output, targets, reduction) -> reduction == Reduction.SUM
                ? output.square().sum() : output.square().mean());
        try (Suite suite = Suite.build("seq", 8);
             PerSampleCheck check = PerSampleCheck.builder().model(suite.model()).inputs(suite.input()).loss(squares)
                     .mode(CheckMode.SKETCH).build()) {
            CheckReport report = check.run(Engines.vmap());
            PerSampleAssertions.assertCorrect(report);
            assertEquals(4, report.sketch().backwards(), "two projections for each reduction");
        }
    }
}
