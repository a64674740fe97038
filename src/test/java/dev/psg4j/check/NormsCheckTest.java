package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.bridge.Natives;
import dev.psg4j.engine.Engines;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.Failure;
import dev.psg4j.report.FailureKind;
import dev.psg4j.report.ParamReport;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Norms-only candidates against Opacus's own exports: ghost clipping's per-sample norms
 * (whole and per parameter) and norms from GradSampleModule's grad_sample pass; every planted bug
 * fails naming the sample(s) and the parameter, with the diagnosis of its kind.
 */
class NormsCheckTest {
    static Stream<Arguments> exports() {
        return OpacusFixtures.cases().stream().flatMap(f -> Stream.of(Reduction.values()).flatMap(r -> Stream.of(
                "ghost_norms", "ghost_param_norms", "norms").map(file -> Arguments.of(f, r, file + "_" + r.label() + ".pt"))));
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("exports")
    void opacusNormsPass(String fixture, Reduction reduction, String file) {
        CheckReport report = OpacusFixtures.check(fixture, reduction, 0,
                c -> c.runNorms(NormSampler.precomputed(file, reduction, OpacusFixtures.file(fixture, file))));
        assertTrue(report.passed(), report::table);
        assertEquals(CheckReport.NORMS, report.candidate());
        assertTrue(report.diagnoses().isEmpty(), report::toJson);
        ParamReport first = report.reductions().get(0).params().get(0);
        assertEquals(List.of(OpacusFixtures.SET.entry(fixture).get("batch_size").asLong()), first.shape());
        int expected = file.startsWith("ghost_param") ? OpacusFixtures.SET.entry(fixture).get("param_names").size() : 1;
        assertEquals(expected, report.reductions().get(0).params().size());
    }

    /** The same fixtures' grad_sample passes the gradient check: the fixtures are coherent. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("reductionsOfCases")
    void opacusGradSamplePassesTheGradientCheck(String fixture, Reduction reduction) {
        String file = "grads_" + reduction.label() + ".pt";
        CheckReport report = OpacusFixtures.check(fixture, reduction, 0,
                c -> c.run(Engines.precomputed(file, reduction, OpacusFixtures.file(fixture, file))));
        assertTrue(report.passed(), report::table);
        assertEquals(CheckReport.GRADIENTS, report.candidate());
    }

    static Stream<Arguments> reductionsOfCases() {
        return OpacusFixtures.cases().stream().flatMap(f -> Stream.of(Reduction.values()).map(r -> Arguments.of(f, r)));
    }

    static Stream<OpacusFixtures.Bug> normBugs() {
        return OpacusFixtures.bugs().stream().filter(OpacusFixtures.Bug::isNorms);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("normBugs")
    void plantedNormBugsFailWithTheirDiagnosis(OpacusFixtures.Bug bug) {
        CheckReport report = OpacusFixtures.check(bug.fixture(), bug.reduction(), 0, c -> c.runNorms(
                NormSampler.precomputed(bug.file(), bug.reduction(), OpacusFixtures.file(bug.fixture(), bug.file()))));
        assertFalse(report.passed(), report::table);
        Diagnosis d = report.diagnoses().stream().filter(x -> x.kind().label().equals(bug.diagnosis())).findFirst()
                .orElseThrow(() -> new AssertionError("no " + bug.diagnosis() + " in " + report.toJson()));
        assertEquals(1, report.diagnoses().size(), report::toJson);  // one cause named, the right one
        assertEquals(bug.param(), d.param(), report::toJson);
        String param = bug.param() == null ? NormVerdicts.WHOLE : bug.param();
        for (Failure f : report.failures()) {
            assertEquals(param, f.param(), report::toJson);
            assertEquals(FailureKind.VALUE, f.kind());
        }
        if (bug.samples() != null) {
            assertEquals(bug.samples(), d.samples(), report::toJson);
            assertEquals(bug.samples(), report.failures().stream().map(Failure::sample).toList(), report::toJson);
        }
    }

    @Test
    void resultsAreIdenticalAtOneAndTwoThreads() {
        for (String file : List.of("bug_norm_scaled_mean.pt", "ghost_param_norms_mean.pt")) {
            String[] json = new String[2];
            for (int threads = 1; threads <= 2; threads++) {
                json[threads - 1] = OpacusFixtures.check("emb_conv", Reduction.MEAN, threads, c -> c.runNorms(
                        NormSampler.precomputed(file, Reduction.MEAN, OpacusFixtures.file("emb_conv", file)))).toJson();
            }
            assertEquals(json[0], json[1]);
        }
    }

    @Test
    void aNonFiniteNormIsANonFiniteFailureNamingTheSample() {
        String file = "bad_norms_nan_sum.pt";
        CheckReport report = OpacusFixtures.check("mlp", Reduction.SUM, 0, c -> c.runNorms(
                NormSampler.precomputed(file, Reduction.SUM, OpacusFixtures.file("mlp", file))));
        assertFalse(report.passed());
        assertEquals(List.of(1), report.reductions().get(0).params().get(0).badSamples());
        assertEquals(FailureKind.NON_FINITE, report.failures().get(0).kind());
        assertTrue(report.diagnoses().isEmpty(), report::toJson);
    }

    @Test
    void randomMismatchesGetNoDiagnosis() {
        Map<String, Tensor> norms = OpacusFixtures.file("mlp", "norms_sum.pt");
        Tensor t = norms.get("");
        Tensor noisy = t.mul(org.bytedeco.pytorch.global.torch.rand(t.size(0)).add(new org.bytedeco.pytorch.Scalar(0.5)));
        CheckReport report = OpacusFixtures.check("mlp", Reduction.SUM, 0,
                c -> c.runNorms(NormSampler.precomputed("noisy", Reduction.SUM, Map.of("", noisy))));
        assertFalse(report.passed());
        assertTrue(report.diagnoses().isEmpty(), report::toJson);
    }

    static Stream<Arguments> badCandidates() {
        return Stream.of(
                Arguments.of("bad_norms_too_long_sum.pt", "[7]"),
                Arguments.of("grads_sum.pt", "per-sample gradients"),
                Arguments.of("summed_flat_sum.pt", "shape"));
    }

    /** Wrong shapes and names are bad input, one line naming the entry. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("badCandidates")
    void malformedCandidatesAreBadInput(String file, String mentions) {
        BadInputException e = assertThrows(BadInputException.class, () -> OpacusFixtures.check("mlp", Reduction.SUM, 0,
                c -> c.runNorms(NormSampler.precomputed(file, Reduction.SUM, OpacusFixtures.file("mlp", file)))));
        assertTrue(e.getMessage().contains(mentions), e::getMessage);
        assertFalse(e.getMessage().contains("\n"), e::getMessage);
    }

    @Test
    void missingExtraAndMixedEntriesAreBadInput() {
        Map<String, Tensor> perParam = OpacusFixtures.file("mlp", "ghost_param_norms_sum.pt");
        Map<String, Tensor> missing = new LinkedHashMap<>(perParam);
        missing.remove("2.bias");
        Map<String, Tensor> extra = new LinkedHashMap<>(perParam);
        extra.put("3.weight", perParam.get("2.bias"));
        Map<String, Tensor> mixed = new LinkedHashMap<>(perParam);
        mixed.put("", perParam.get("2.bias"));
        for (Map<String, Tensor> bad : List.of(missing, extra, mixed, Map.<String, Tensor>of())) {
            BadInputException e = assertThrows(BadInputException.class, () -> OpacusFixtures.check("mlp",
                    Reduction.SUM, 0, c -> c.runNorms(NormSampler.precomputed("bad", Reduction.SUM, bad))));
            assertFalse(e.getMessage().contains("\n"), e::getMessage);
        }
        Natives.closeAll(perParam);
    }
}
