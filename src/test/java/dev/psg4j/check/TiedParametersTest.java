package dev.psg4j.check;

import dev.psg4j.FixtureSet;
import dev.psg4j.Fixtures;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.FailureKind;
import dev.psg4j.report.ParamReport;

import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.ReLUImpl;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Tied parameters (DESIGN §1): one tensor under several names is one parameter, checked once
 * under its first name with the others as aliases; every engine and the reference give it the
 * sum over its uses; a candidate may name it by any alias, and two entries that disagree fail.
 */
class TiedParametersTest {
    private static final FixtureSet TIED = Fixtures.TIED;
    private static final long B = 6;

    private static ParamReport param(CheckReport report, String name) {
        return report.reductions().get(0).params().stream().filter(p -> p.name().equals(name)).findFirst()
                .orElseThrow(() -> new AssertionError("no " + name + " in " + report.toJson()));
    }

    /** Every engine given passes its check on the fixture's model and batch. */
    private static void assertEnginesPass(String fixture, Reduction reduction, GradSampler... engines) {
        try (Model model = Models.torchScript(TIED.file(fixture, "model.pt"));
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(TIED.inputs(fixture))
                     .reduction(reduction).build()) {
            for (GradSampler engine : engines) {
                CheckReport report = check.run(engine);
                assertTrue(report.passed(), () -> engine.name() + "\n" + report.table());
            }
        }
    }

    private static CheckReport checkFile(String fixture, Reduction reduction, String candidate) {
        try (Model model = Models.torchScript(TIED.file(fixture, "model.pt"));
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(TIED.inputs(fixture))
                     .reduction(reduction).build()) {
            return check.run(Engines.precomputed(candidate, reduction, TIED.grads(fixture, candidate)));
        }
    }

    @Test
    void aTorchScriptTiedWeightIsOneParameterWithItsAlias() {
        try (Model model = Models.torchScript(TIED.file("tied_linear", "model.pt"))) {
            assertEquals(List.of("a.weight", "a.bias", "b.bias"), List.copyOf(model.trainableParameters().keySet()));
            assertEquals(Map.of("a.weight", List.of("b.weight")), model.aliases());
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Reduction.class)
    void torchFuncGradientsOfATiedWeightPassAndEveryEngineAgrees(Reduction reduction) {
        String label = reduction.label();
        CheckReport func = checkFile("tied_linear", reduction, "grads_func_" + label + ".pt");
        assertTrue(func.passed(), func::table);
        assertEquals(List.of("b.weight"), param(func, "a.weight").aliases());
        assertEnginesPass("tied_linear", reduction, Engines.vmap(), Engines.microbatch(), Engines.vmap().chunkSize(4));
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Reduction.class)
    void aCandidateMayNameATiedParameterByItsAliasButNotByTwoNamesThatDisagree(Reduction reduction) {
        String label = reduction.label();
        CheckReport alias = checkFile("tied_linear", reduction, "grads_alias_" + label + ".pt");
        assertTrue(alias.passed(), alias::table);
        assertEquals(List.of("a.weight"), param(alias, "b.weight").aliases());

        CheckReport both = checkFile("tied_linear", reduction, "grads_both_wrong_alias_" + label + ".pt");
        assertFalse(both.passed(), both::table);
        assertTrue(param(both, "a.weight").passed(), both::table);
        assertFalse(param(both, "b.weight").passed(), both::table);
        assertTrue(both.failures().stream().allMatch(f -> f.kind() == FailureKind.VALUE && f.param().equals("b.weight")),
                both::table);
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Reduction.class)
    void opacusGradientsOfADplstmExportPassWithTheCellNamesAsAliases(Reduction reduction) {
        CheckReport report = checkFile("dplstm", reduction, "grads_opacus_" + reduction.label() + ".pt");
        assertTrue(report.passed(), report::table);
        try (Model model = Models.torchScript(TIED.file("dplstm", "model.pt"))) {
            List<String> pythonNames = new java.util.ArrayList<>();
            TIED.entry("dplstm").get("python_names").forEach(n -> pythonNames.add(n.asText()));
            assertEquals(pythonNames, List.copyOf(model.trainableParameters().keySet()));
            assertEquals(4, model.aliases().size(), model.aliases()::toString);  // the LSTM's four tensors
        }
        assertEnginesPass("dplstm", reduction, Engines.vmap());
    }

    @Test
    void aMissingTiedParameterSaysAnyOfItsNamesWillDo() {
        Map<String, Tensor> grads = new LinkedHashMap<>(TIED.grads("tied_linear", "grads_func_sum.pt"));
        grads.remove("a.weight");
        try (Model model = Models.torchScript(TIED.file("tied_linear", "model.pt"));
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(TIED.inputs("tied_linear"))
                     .reduction(Reduction.SUM).build()) {
            CheckReport report = check.run(Engines.precomputed("no-weight", Reduction.SUM, grads));
            assertFalse(report.passed());
            assertEquals(FailureKind.MISSING_PARAM, report.failures().get(0).kind());
            assertTrue(report.failures().get(0).message().contains("b.weight"), report.failures().get(0)::message);
        }
    }

    /** One Java tensor under two names of a function model: the gradient is the sum over both uses. */
    @Test
    void aFunctionModelWithOneTensorUnderTwoNamesGetsTheTotalGradientFromEveryEngine() {
        torch.manual_seed(3);
        Tensor w = torch.randn(3, 4).set_requires_grad(true);
        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("first.weight", w);
        params.put("second.weight", w);
        Tensor x = torch.randn(B, 4);
        try (Model model = Models.function("tied function", params,
                (inputs, p) -> torch.linear(inputs.get(0), p.get("first.weight"))
                        .add(torch.linear(torch.tanh(inputs.get(0)), p.get("second.weight"))));
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(x).loss(Loss.SUM)
                     .reduction(Reduction.SUM).build()) {
            assertEquals(Map.of("first.weight", List.of("second.weight")), model.aliases());
            Map<String, Tensor> vmap = Engines.vmap().perSampleGradients(model, check.batch(), check.loss(), Reduction.SUM);
            assertEquals(List.of("first.weight"), List.copyOf(vmap.keySet()));
            // d/dW sum(W x + W tanh x) = 1 (x + tanh x)^T for each of the 3 outputs.
            Tensor expected = torch.ones(B, 3, 1).mul(x.add(torch.tanh(x)).unsqueeze(1));
            assertTrue(torch.allclose(vmap.get("first.weight"), expected, 1e-5, 1e-6, false));
            for (GradSampler engine : List.of(Engines.vmap(), Engines.microbatch())) {
                CheckReport report = check.run(engine);
                assertTrue(report.passed(), report::table);
            }
        }
    }

    /** The same Linear twice in a Sequential (a weight-shared block): tied by identity, total gradient. */
    @Test
    void aLayerUsedTwiceInASequentialIsOneParameterPerTensor() {
        torch.manual_seed(5);
        SequentialImpl seq = new SequentialImpl();
        LinearImpl shared = new LinearImpl(4, 4);
        seq.push_back("0", shared);
        seq.push_back("1", new ReLUImpl());
        seq.push_back("2", shared);
        try (Model model = Models.module(seq);
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(torch.randn(B, 4)).build()) {
            assertEquals(List.of("0.weight", "0.bias"), List.copyOf(model.trainableParameters().keySet()));
            assertEquals(Map.of("0.weight", List.of("2.weight"), "0.bias", List.of("2.bias")), model.aliases());
            for (GradSampler engine : List.of(Engines.vmap(), Engines.microbatch())) {
                CheckReport report = check.run(engine);
                assertTrue(report.passed(), report::table);
                assertEquals(List.of("2.weight"), param(report, "0.weight").aliases());
            }
        }
    }
}
