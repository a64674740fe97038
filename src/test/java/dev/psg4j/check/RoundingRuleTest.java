package dev.psg4j.check;

import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.models.ResNet18;
import dev.psg4j.models.TinyGpt;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.DiagnosisKind;
import dev.psg4j.report.ParamReport;
import dev.psg4j.report.ReductionReport;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The default tolerance rule (allclose widened by 4 times the reference's own measured rounding
 * level): correct float32 gradients of a GPT-style decoder (B = 64, the l1 loss over 64 × 2,000 × 32
 * outputs, and cross_entropy) and of ResNet-18 with GroupNorm pass, where the allclose rule fails
 * the l1 ones and says they are at rounding level; one element off by 10 rounding levels fails; the
 * allclose rule is exactly torch.allclose; a model that cannot run in double is measured by moving
 * its parameters one ulp; float16 and bfloat16 candidates are diagnosed as their own precision.
 */
class RoundingRuleTest {
    private static final long B = 64;
    private static Model gpt;
    private static Tensor tokens;
    private static Tensor nextTokens;
    /** The vmap engine's gradients of the GPT model, per loss and reduction. */
    private static final Map<String, Map<Reduction, Map<String, Tensor>>> VMAP = new LinkedHashMap<>();

    @BeforeAll
    static void gptGradients() {
        gpt = TinyGpt.model(TinyGpt.parameters(0));
        tokens = TinyGpt.tokens(B, 1);
        nextTokens = TinyGpt.tokens(B, 2);
        for (String loss : List.of("l1", "cross_entropy")) {
            try (Batch batch = new Batch(List.of(tokens), targets(loss), 0, 0)) {
                Map<Reduction, Map<String, Tensor>> byReduction = new EnumMap<>(Reduction.class);
                for (Reduction r : Reduction.values()) {
                    byReduction.put(r, Engines.vmap().perSampleGradients(gpt, batch, Loss.named(loss), r));
                }
                VMAP.put(loss, byReduction);
            }
        }
    }

    @AfterAll
    static void close() {
        VMAP.values().forEach(m -> m.values().forEach(g -> g.values().forEach(Tensor::close)));
        gpt.close();
    }

    private static List<Tensor> targets(String loss) {
        return "cross_entropy".equals(loss) ? List.of(nextTokens) : List.of();
    }

    private static PerSampleCheck.Builder gptCheck(String loss) {
        return PerSampleCheck.builder().model(gpt).inputs(tokens).targets(targets(loss)).loss(Loss.named(loss))
                .probes(false);
    }

    /** New handles onto stored gradients (the check closes what a sampler returns), optionally changed. */
    private static GradSampler stored(String name, Map<Reduction, Map<String, Tensor>> grads,
                                      UnaryOperator<Map<String, Tensor>> change) {
        return new GradSampler() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
                Map<String, Tensor> handles = new LinkedHashMap<>();
                grads.get(reduction).forEach((k, t) -> handles.put(k, new Tensor(t)));
                return change.apply(handles);
            }
        };
    }

    private static GradSampler vmapOf(String loss) {
        return stored("vmap", VMAP.get(loss), UnaryOperator.identity());
    }

    private static List<ParamReport> failing(CheckReport report) {
        return report.reductions().stream().flatMap(r -> r.params().stream()).filter(p -> !p.passed()).toList();
    }

    @ParameterizedTest
    @ValueSource(strings = {"l1", "cross_entropy"})
    void correctGptGradientsPassByDefault(String loss) {
        for (GradSampler sampler : List.of(vmapOf(loss), Engines.microbatch())) {
            try (PerSampleCheck check = gptCheck(loss).build()) {
                CheckReport report = check.run(sampler);
                assertTrue(report.passed(), () -> sampler.name() + ":\n" + report.summary() + report.table());
                assertEquals(3, report.schemaVersion());
                assertEquals("rounding", report.tolerance());
                assertEquals("float", report.referencePrecision());
                assertEquals("double", report.rounding().measuredAgainst());
                assertEquals(List.of(0L, 16L, 32L, 48L), report.rounding().samples());
                for (ReductionReport r : report.reductions()) {
                    for (ParamReport p : r.params()) {
                        assertEquals(B, p.sampleRoundingLevel().size(), p.name());
                        assertTrue(p.roundingLevel() > 0, () -> r.reduction() + " / " + p.name());
                    }
                }
                assertTrue(report.summary().contains("tolerance rounding (+ 4 x float rounding level), device cpu"),
                        report.summary());
            }
        }
    }

    /** The parameters a sketch leaves to the reference (those its residuals do not pass) are judged by the same rule. */
    @Test
    void aSketchDecidesByTheSameRule() {
        try (PerSampleCheck sketch = gptCheck("l1").probes(true).mode(CheckMode.SKETCH).seed(7).build()) {
            CheckReport report = sketch.run(vmapOf("l1"));
            assertTrue(report.passed(), () -> report.summary() + report.table());
            assertTrue(report.sketch().exactParams() > 0, "the sketch passed everything: nothing to test");
            assertEquals("double", report.rounding().measuredAgainst());
        }
    }

    /**
     * The false alarm the rounding rule removes: under the allclose rule the vmap engine's correct
     * l1 gradients fail in most parameters, each failure diagnosed as float rounding; cross_entropy's
     * pass, and the microbatch engine (the reference's own computation) passes either way.
     */
    @Test
    void theAllcloseRuleFailsCorrectL1GradientsAndSaysTheyAreRounding() {
        try (PerSampleCheck check = gptCheck("l1").toleranceRule(ToleranceRule.ALLCLOSE).build()) {
            CheckReport report = check.run(vmapOf("l1"));
            assertFalse(report.passed());
            assertEquals("allclose", report.tolerance());
            List<ParamReport> sumFailing = report.reductions().get(0).params().stream().filter(p -> !p.passed()).toList();
            assertTrue(sumFailing.size() >= 15, () -> sumFailing.size() + " of 28 parameters fail\n" + report.table());
            Set<String> explained = report.diagnoses().stream().filter(d -> d.kind() == DiagnosisKind.FLOAT_ROUNDING)
                    .map(d -> d.message().substring(0, d.message().indexOf(':'))).collect(Collectors.toSet());
            for (ReductionReport r : report.reductions()) {
                for (ParamReport p : r.params()) {
                    if (!p.passed()) {
                        assertTrue(explained.contains(r.reduction() + " / " + p.name()),
                                () -> r.reduction() + " / " + p.name() + " has no float_rounding diagnosis: "
                                        + report.diagnoses());
                        assertNotNull(p.roundingLevel());
                    } else {
                        assertNull(p.roundingLevel(), "the allclose rule measures only where something failed");
                    }
                }
            }
            assertEquals(explained.size(), report.diagnoses().size(), report.diagnoses()::toString);
            assertTrue(report.diagnoses().get(0).message().contains("at float rounding level"),
                    report.diagnoses().get(0).message());
        }
        try (PerSampleCheck check = gptCheck("cross_entropy").toleranceRule(ToleranceRule.ALLCLOSE).build()) {
            CheckReport report = check.run(vmapOf("cross_entropy"));
            assertTrue(report.passed(), report::table);
            assertNull(report.rounding(), "nothing failed: nothing measured");
        }
        try (PerSampleCheck check = gptCheck("l1").toleranceRule(ToleranceRule.ALLCLOSE).build()) {
            assertTrue(check.run(Engines.microbatch()).passed());
        }
    }

    /**
     * One element off by 10 rounding levels, at the element of smallest magnitude of one sample in
     * each parameter, is caught in every parameter where that error is not within allclose's own
     * atol + rtol·|reference| there (at least twice it), so that only the widening could hide it.
     */
    @Test
    void anElementOffByTenRoundingLevelsFails() {
        Map<String, List<Double>> levels = new LinkedHashMap<>();
        try (PerSampleCheck check = gptCheck("l1").reduction(Reduction.SUM).build()) {
            CheckReport clean = check.run(vmapOf("l1"));
            assertTrue(clean.passed(), clean::table);
            clean.reductions().get(0).params().forEach(p -> levels.put(p.name(), p.sampleRoundingLevel()));
        }
        List<String> names = List.copyOf(levels.keySet());
        Map<String, Integer> sampleOf = new LinkedHashMap<>();
        for (int k = 0; k < names.size(); k++) {
            sampleOf.put(names.get(k), (int) ((7L * k + 3) % B));
        }
        Map<String, Long> elementOf = new LinkedHashMap<>();
        List<String> planted = new ArrayList<>();
        for (String name : names) {
            Tensor row = VMAP.get("l1").get(Reduction.SUM).get(name).select(0, sampleOf.get(name)).reshape(-1);
            long smallest = row.abs().argmin().item_long();
            double allclose = Tolerance.DEFAULT.atol() + Tolerance.DEFAULT.rtol() * Math.abs(row.get(smallest).item_double());
            elementOf.put(name, smallest);
            if (10 * levels.get(name).get(sampleOf.get(name)) >= 2 * allclose) {
                planted.add(name);
            }
        }
        assertTrue(planted.size() >= 20, () -> "only " + planted.size() + " parameters round above atol: " + levels);
        try (PerSampleCheck check = gptCheck("l1").reduction(Reduction.SUM).build()) {
            CheckReport report = check.run(stored("vmap, one element off", VMAP.get("l1"), grads -> {
                for (String name : planted) {
                    int i = sampleOf.get(name);
                    Tensor g = grads.get(name).clone();
                    g.select(0, i).view(-1).narrow(0, elementOf.get(name), 1).add_(new Scalar(10 * levels.get(name).get(i)));
                    grads.put(name, g);
                }
                return grads;
            }));
            for (ParamReport p : report.reductions().get(0).params()) {
                if (planted.contains(p.name())) {
                    assertEquals(List.of(sampleOf.get(p.name())), p.badSamples(), () -> p.name() + "\n" + report.table());
                } else {
                    assertTrue(p.passed(), p.name());
                }
            }
        }
    }

    /** The allclose rule is torch.allclose, sample by sample, against the float reference. */
    @Test
    void theAllcloseRuleIsTorchAllclose() {
        torch.manual_seed(5);
        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("w", torch.randn(6, 5).requires_grad_(true));
        params.put("b", torch.randn(6).requires_grad_(true));
        Tensor x = torch.randn(8, 5);
        try (Model model = Models.function("tanh layer", params,
                (in, p) -> torch.tanh(torch.linear(in.get(0), p.get("w"), new org.bytedeco.pytorch.TensorOptional(p.get("b")))));
             Batch batch = Batch.of(x)) {
            Map<String, Tensor> reference = Engines.microbatch().perSampleGradients(model, batch, Loss.L1, Reduction.SUM);
            Map<String, Tensor> candidate = new LinkedHashMap<>();
            // Errors of 0.5 to 1.5 tolerances, one per element, different at every sample.
            reference.forEach((name, r) -> {
                Tensor tol = r.abs().mul(new Scalar(1e-4)).add(new Scalar(1e-5));
                Tensor off = torch.rand(r.sizes().vec().get()).add(new Scalar(0.5)).mul(tol);
                candidate.put(name, r.add(off.mul(torch.rand(r.sizes().vec().get()).lt(new Scalar(0.05)))));
            });
            Map<Reduction, Map<String, Tensor>> stored = new EnumMap<>(Reduction.class);
            stored.put(Reduction.SUM, candidate);
            for (ToleranceRule rule : ToleranceRule.values()) {
                try (PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(x).reduction(Reduction.SUM)
                        .probes(false).toleranceRule(rule).build()) {
                    CheckReport report = check.run(stored("noisy", stored, UnaryOperator.identity()));
                    for (ParamReport p : report.reductions().get(0).params()) {
                        List<Integer> expected = new ArrayList<>();
                        for (int i = 0; i < 8; i++) {
                            if (!torch.allclose(candidate.get(p.name()).select(0, i), reference.get(p.name()).select(0, i),
                                    1e-4, 1e-5, false)) {
                                expected.add(i);
                            }
                        }
                        if (rule == ToleranceRule.ALLCLOSE) {
                            assertEquals(expected, p.badSamples(), p.name());
                            assertFalse(expected.isEmpty(), p.name() + ": the test plants no error");
                        } else {
                            assertTrue(expected.containsAll(p.badSamples()), "the rounding rule only widens");
                        }
                    }
                }
            }
        }
    }

    /**
     * A model that makes float tensors of its own (a weight kept in its closure) cannot run in
     * double: its rounding is measured against its parameters moved by one ulp, and its correct
     * gradients pass.
     */
    @Test
    void aModelThatCannotRunInDoubleIsMeasuredAgainstMovedParameters() {
        Map<String, Tensor> params = TinyGpt.parameters(3);
        String fixed = "h.1.mlp.c_fc.weight";
        Tensor weight = params.remove(fixed).detach();  // a float constant of the forward now
        try (Model model = Models.function("GPT with a fixed MLP weight", params, (in, p) -> {
            Map<String, Tensor> all = new LinkedHashMap<>(p);
            all.put(fixed, weight);
            return TinyGpt.forward(in.get(0), all);
        }); PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(tokens).reduction(Reduction.SUM)
                .probes(false).build()) {
            CheckReport report = check.run(Engines.vmap());
            assertTrue(report.passed(), report::table);
            assertEquals("perturbed parameters", report.rounding().measuredAgainst());
            assertEquals("float", report.referencePrecision());
            report.reductions().get(0).params().forEach(p -> assertTrue(p.roundingLevel() > 0, p.name()));
        }
    }

    /** ResNet-18 with GroupNorm (11 M weights, 62 parameters) at B = 16: correct gradients pass by default. */
    @Test
    void resNet18WithGroupNormPassesByDefault() {
        try (PointerScope scope = new PointerScope();
             Model model = ResNet18.model(ResNet18.parameters(0));
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(ResNet18.images(16, 32, 1))
                     .reduction(Reduction.SUM).probes(false).build()) {
            CheckReport report = check.run(Engines.vmap());
            assertTrue(report.passed(), report::table);
            assertEquals(62, report.reductions().get(0).params().size());
            assertEquals("double", report.rounding().measuredAgainst());
        }
    }

    /**
     * float16 and bfloat16 copies of correct gradients fail (their rounding is above rtol), and each
     * failing parameter is diagnosed as the candidate's own precision; a real bug in such a copy is
     * not.
     */
    @ParameterizedTest
    @ValueSource(strings = {"Half", "BFloat16"})
    void lowPrecisionCandidatesAreDiagnosedAsTheirOwnPrecision(String dtype) {
        torch.ScalarType type = torch.ScalarType.valueOf(dtype);
        try (PerSampleCheck check = gptCheck("l1").reduction(Reduction.SUM).build()) {
            CheckReport report = check.run(stored(dtype, VMAP.get("l1"), grads -> {
                grads.replaceAll((name, g) -> g.to(type));
                return grads;
            }));
            List<ParamReport> failing = failing(report);
            assertFalse(failing.isEmpty(), report::table);
            Map<String, Diagnosis> byParam = report.diagnoses().stream()
                    .collect(Collectors.toMap(Diagnosis::param, d -> d));
            for (ParamReport p : failing) {
                Diagnosis d = byParam.get(p.name());
                assertNotNull(d, () -> p.name() + " has no diagnosis: " + report.diagnoses());
                assertEquals(DiagnosisKind.CANDIDATE_PRECISION, d.kind(), d.message());
                assertEquals(p.badSamples(), d.samples());
            }
            assertTrue(report.diagnoses().get(0).message().contains(type == torch.ScalarType.Half ? "float16" : "bfloat16"));

            String swapped = "h.0.mlp.c_fc.weight";
            CheckReport buggy = check.run(stored(dtype + ", two samples swapped", VMAP.get("l1"), grads -> {
                grads.replaceAll((name, g) -> g.to(type));
                Tensor g = grads.get(swapped).clone();
                Tensor first = g.select(0, 1).clone();
                g.select(0, 1).copy_(g.select(0, 5));
                g.select(0, 5).copy_(first);
                grads.put(swapped, g);
                return grads;
            }));
            buggy.diagnoses().stream().filter(d -> d.param().equals(swapped))
                    .forEach(d -> assertFalse(d.kind() == DiagnosisKind.CANDIDATE_PRECISION, d.message()));
            ParamReport p = buggy.reductions().get(0).params().stream().filter(r -> r.name().equals(swapped))
                    .findFirst().orElseThrow();
            assertTrue(p.badSamples().containsAll(List.of(1, 5)), p::toString);
        }
    }
}
