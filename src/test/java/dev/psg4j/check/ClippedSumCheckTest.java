package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.Failure;
import dev.psg4j.report.ParamReport;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Clipped-sum candidates against Opacus's DPOptimizer / DPPerLayerOptimizer
 * p.summed_grad with noise_multiplier=0: they pass with Opacus's formulas, flat and per-layer
 * (one C split as C/sqrt(P), or the same thresholds listed); every planted clipping bug fails with
 * the failing parameters named and its diagnosis among those given.
 */
class ClippedSumCheckTest {
    static Stream<Arguments> reductionsOfCases() {
        return OpacusFixtures.cases().stream().flatMap(f -> Stream.of(Reduction.values()).map(r -> Arguments.of(f, r)));
    }

    private static CheckReport clippedSum(String fixture, Reduction reduction, String file, Clipping clipping,
                                          int threads) {
        return OpacusFixtures.check(fixture, reduction, threads, c -> c.runClippedSum(
                ClippedSumSampler.precomputed(file, reduction, OpacusFixtures.file(fixture, file)), clipping));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("reductionsOfCases")
    void opacusFlatSummedGradPasses(String fixture, Reduction reduction) {
        double c = OpacusFixtures.maxGradNorm(fixture, reduction);
        CheckReport report = clippedSum(fixture, reduction, "summed_flat_" + reduction.label() + ".pt",
                Clipping.flat(c), 0);
        assertTrue(report.passed(), report::table);
        assertEquals(CheckReport.CLIPPED_SUM, report.candidate());
        assertEquals("flat", report.clipping().mode());
        assertEquals(c, report.clipping().maxGradNorm());
        // C is the median norm: some samples are clipped, some are not (both branches of min(1, ·) are exercised).
        int clipped = report.clipping().clippedSamples().get(reduction.label()).size();
        assertEquals(OpacusFixtures.reduction(fixture, reduction).get("clipped_samples").asInt(), clipped);
        assertTrue(clipped > 0 && clipped < OpacusFixtures.SET.entry(fixture).get("batch_size").asInt());
        for (ParamReport p : report.reductions().get(0).params()) {
            assertNull(p.worstSample());
            assertNull(p.sampleMaxTolRatio());
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("reductionsOfCases")
    void opacusPerLayerSummedGradPassesSplitOrListed(String fixture, Reduction reduction) {
        double c = OpacusFixtures.maxGradNorm(fixture, reduction);
        String file = "summed_per_layer_" + reduction.label() + ".pt";
        CheckReport split = clippedSum(fixture, reduction, file, Clipping.perLayer(c), 0);
        assertTrue(split.passed(), split::table);
        int params = OpacusFixtures.SET.entry(fixture).get("param_names").size();
        for (double t : split.clipping().thresholds().values()) {
            assertEquals(c / Math.sqrt(params), t, 1e-12);
        }
        CheckReport listed = clippedSum(fixture, reduction, file,
                Clipping.perLayerThresholds(Collections.nCopies(params, c / Math.sqrt(params))), 0);
        assertTrue(listed.passed(), listed::table);
        // Flat clipping at the same C is another sum: the per-layer one fails it.
        assertFalse(clippedSum(fixture, reduction, file, Clipping.flat(c), 0).passed());
    }

    static Stream<OpacusFixtures.Bug> clippingBugs() {
        return OpacusFixtures.bugs().stream().filter(b -> !b.isNorms());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("clippingBugs")
    void plantedClippingBugsFailWithTheirDiagnosis(OpacusFixtures.Bug bug) {
        Clipping clipping = new Clipping(ClippingMode.named(bug.clipping()), List.of(bug.maxGradNorm()));
        CheckReport report = clippedSum(bug.fixture(), bug.reduction(), bug.file(), clipping, 0);
        assertFalse(report.passed(), report::table);
        List<String> failing = new ArrayList<>();
        for (ParamReport p : report.reductions().get(0).params()) {
            if (!p.passed()) {
                failing.add(p.name());
            }
        }
        assertEquals(failing, report.failures().stream().map(Failure::param).toList(), report::toJson);
        Diagnosis d = report.diagnoses().stream().filter(x -> x.kind().label().equals(bug.diagnosis())).findFirst()
                .orElseThrow(() -> new AssertionError("no " + bug.diagnosis() + " among "
                        + OpacusFixtures.diagnosisKinds(report) + "\n" + report.toJson()));
        assertEquals(failing.get(0), d.param(), report::toJson);
        assertTrue(d.message().contains(String.join(", ", failing)), d::message);  // it reproduces every failing one
        for (Failure f : report.failures()) {
            assertTrue(f.message().contains("worst: element ["), f::message);
        }
    }

    @Test
    void aCorrectSumGetsNoDiagnosisAndAWrongThresholdFailsWithoutAFalseOne() {
        double c = OpacusFixtures.maxGradNorm("mlp", Reduction.SUM);
        assertTrue(clippedSum("mlp", Reduction.SUM, "summed_flat_sum.pt", Clipping.flat(c), 0).diagnoses().isEmpty());
        CheckReport other = clippedSum("mlp", Reduction.SUM, "summed_flat_sum.pt", Clipping.flat(c * 0.7), 0);
        assertFalse(other.passed());
        assertTrue(other.diagnoses().isEmpty(), other::toJson);  // a threshold psg4j does not suspect: no cause named
    }

    @Test
    void resultsAreIdenticalAtOneAndTwoThreads() {
        for (String file : List.of("summed_flat_mean.pt", "bug_not_floored_mean.pt")) {
            double c = OpacusFixtures.maxGradNorm("emb_conv", Reduction.MEAN);
            String one = clippedSum("emb_conv", Reduction.MEAN, file, Clipping.flat(c), 1).toJson();
            String two = clippedSum("emb_conv", Reduction.MEAN, file, Clipping.flat(c), 2).toJson();
            assertEquals(one, two);
        }
    }

    static Stream<Arguments> badCandidates() {
        return Stream.of(
                Arguments.of("bad_sum_missing_sum.pt", Clipping.flat(1), "no entry for trainable parameter '2.bias'"),
                Arguments.of("bad_sum_extra_sum.pt", Clipping.flat(1), "'frozen.weight'"),
                Arguments.of("grads_sum.pt", Clipping.flat(1), "looks like per-sample gradients"),
                Arguments.of("summed_flat_sum.pt", Clipping.perLayerThresholds(List.of(1.0, 2.0)),
                        "one threshold per trainable parameter (4 here"));
    }

    @ParameterizedTest(name = "{0} {2}")
    @MethodSource("badCandidates")
    void malformedCandidatesAndThresholdsAreBadInput(String file, Clipping clipping, String mentions) {
        BadInputException e = assertThrows(BadInputException.class,
                () -> clippedSum("mlp", Reduction.SUM, file, clipping, 0));
        assertTrue(e.getMessage().contains(mentions), e::getMessage);
        assertFalse(e.getMessage().contains("\n"), e::getMessage);
    }

    @Test
    void thresholdsMustBeFiniteAndPositive() {
        for (double bad : new double[] {0, -1, Double.NaN, Double.POSITIVE_INFINITY}) {
            assertThrows(BadInputException.class, () -> Clipping.flat(bad));
            assertThrows(BadInputException.class, () -> Clipping.perLayerThresholds(List.of(1.0, bad)));
        }
        assertThrows(BadInputException.class, () -> new Clipping(ClippingMode.FLAT, List.of(1.0, 2.0)));
        assertThrows(BadInputException.class, () -> ClippingMode.named("layerwise"));
    }

    @Test
    void sketchModeIsRefusedForClippedSums() {
        Map<String, Tensor> sum = OpacusFixtures.file("mlp", "summed_flat_sum.pt");
        try (var model = dev.psg4j.model.Models.torchScript(OpacusFixtures.SET.file("mlp", "model.pt"));
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(OpacusFixtures.SET.inputs("mlp"))
                     .targets(OpacusFixtures.SET.targets("mlp")).loss(Loss.CROSS_ENTROPY).mode(CheckMode.SKETCH)
                     .build()) {
            assertThrows(BadInputException.class, () -> check.runClippedSum(
                    ClippedSumSampler.precomputed("s", Reduction.SUM, sum), Clipping.flat(1)));
        }
    }
}
