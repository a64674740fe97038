package dev.psg4j.check;

import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.Failure;
import dev.psg4j.report.ParamReport;
import dev.psg4j.report.ReductionReport;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Exact mode: the reference's sample workers give the same report at every thread count
 * and leave the caller's thread setting as it was; one reference pass for both reductions gives
 * the report of two passes (built-in losses), and a custom loss takes two passes.
 */
class ExactModeTest {
    private static final long B = 7;
    private static final long POSITIONS = 5;
    /** How far a mean reference from the scaled sum gradient may be from the mean backward's, in |c - r|. */
    private static final double ROUNDING = 1e-7;

    /** tanh(W x + b) over positions: outputs [B, 4, POSITIONS], classes in dimension 1. */
    private static Model positionwiseModel(AtomicInteger forwards) {
        torch.manual_seed(11);
        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("w", torch.randn(4, 3).requires_grad_(true));
        params.put("b", torch.randn(4, 1).requires_grad_(true));
        return Models.function("positionwise tanh", params, (in, p) -> {
            forwards.incrementAndGet();
            return torch.tanh(torch.matmul(p.get("w"), in.get(0)).add(p.get("b")));
        });
    }

    private static Tensor inputs() {
        torch.manual_seed(12);
        return torch.randn(B, 3, POSITIONS);
    }

    /** The targets of a built-in loss; cross_entropy's ignore some positions, and all of sample 2's. */
    private static List<Tensor> targetsOf(String loss) {
        torch.manual_seed(13);
        return switch (loss) {
            case "mse" -> List.of(torch.randn(B, 4, POSITIONS));
            case "cross_entropy" -> {
                Tensor classes = torch.randint(0, 4, new long[] {B, POSITIONS});
                classes.select(0, 2).fill_(new Scalar(-100));
                classes.select(0, 4).select(0, 1).fill_(new Scalar(-100));
                classes.select(0, 5).select(0, 3).fill_(new Scalar(-100));
                yield List.of(classes);
            }
            default -> List.of();
        };
    }

    /**
     * The reference's own gradients, slightly off everywhere (so that no number is 0) and far off at
     * one sample per reduction.
     */
    private static GradSampler perturbedReference() {
        return new GradSampler() {
            @Override
            public String name() {
                return "perturbed reference";
            }

            @Override
            public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
                Map<String, Tensor> grads = Engines.microbatch().perSampleGradients(model, batch, loss, reduction);
                // Off by 3e-5 × (i + 1) relative at sample i: distinct ratios, so no near-tie decides worst_sample.
                grads.get("w").mul_(torch.arange(new Scalar(1.0), new Scalar(B + 1.0)).mul(new Scalar(3e-5))
                        .add(new Scalar(1.0)).view(B, 1, 1));
                String param = reduction == Reduction.SUM ? "w" : "b";
                grads.get(param).select(0, reduction == Reduction.SUM ? 1 : 3).add_(new Scalar(0.5));
                return grads;
            }
        };
    }

    private static CheckReport check(Model model, String loss, int threads, Reduction... reductions) {
        return check(model, loss, threads, ToleranceRule.ROUNDING, reductions);
    }

    private static CheckReport check(Model model, String loss, int threads, ToleranceRule rule,
                                     Reduction... reductions) {
        try (PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(inputs()).targets(targetsOf(loss))
                .loss(Loss.named(loss)).reductions(reductions).threads(threads).toleranceRule(rule).build()) {
            return check.run(perturbedReference());
        }
    }

    @Test
    void everyNumberIsTheSameAtOneTwoAndFourThreadsAndTheThreadCountIsRestored() {
        int before = torch.get_num_threads();
        torch.set_num_threads(3);  // a count none of the runs asks for
        try (Model model = positionwiseModel(new AtomicInteger())) {
            String one = check(model, "cross_entropy", 1, Reduction.SUM, Reduction.MEAN).toJson();
            assertEquals(3, torch.get_num_threads());
            assertTrue(one.contains("\"passed\" : false"), one);
            for (int threads : new int[] {2, 4}) {
                assertEquals(one, check(model, "cross_entropy", threads, Reduction.SUM, Reduction.MEAN).toJson(),
                        "the report at " + threads + " threads");
                assertEquals(3, torch.get_num_threads(), "the caller's thread count after a run at " + threads);
            }
        } finally {
            torch.set_num_threads(before);
        }
    }

    @Test
    void theMicrobatchEngineIsTheSameAtEveryThreadCount() {
        int before = torch.get_num_threads();
        try (Model model = positionwiseModel(new AtomicInteger());
             Batch batch = Batch.of(inputs())) {
            torch.set_num_threads(1);
            Map<String, Tensor> one = Engines.microbatch().perSampleGradients(model, batch, Loss.L1, Reduction.MEAN);
            torch.set_num_threads(4);
            Map<String, Tensor> four = Engines.microbatch().perSampleGradients(model, batch, Loss.L1, Reduction.MEAN);
            assertEquals(4, torch.get_num_threads());
            one.forEach((name, t) -> assertTrue(torch.equal(t, four.get(name)), name));
        } finally {
            torch.set_num_threads(before);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"l1", "mse", "sum", "cross_entropy"})
    void onePassForBothReductionsGivesTheReportOfTwoPasses(String loss) {
        AtomicInteger forwards = new AtomicInteger();
        try (Model model = positionwiseModel(forwards)) {
            // The allclose rule compares the reference alone. (Under the rounding rule the one pass
            // measures the mean's rounding level on the scaled sum gradient, two passes on the mean
            // backward: two estimates of one level, so ratios differ a little; verdicts do not.)
            CheckReport both = check(model, loss, 2, ToleranceRule.ALLCLOSE, Reduction.SUM, Reduction.MEAN);
            CheckReport sum = check(model, loss, 1, ToleranceRule.ALLCLOSE, Reduction.SUM);
            CheckReport mean = check(model, loss, 1, ToleranceRule.ALLCLOSE, Reduction.MEAN);
            assertFalse(both.passed());
            CheckReport bothRounding = check(model, loss, 2, Reduction.SUM, Reduction.MEAN);
            assertEquals(check(model, loss, 1, Reduction.SUM).reductions().get(0).params().stream()
                    .map(ParamReport::badSamples).toList(), bothRounding.reductions().get(0).params().stream()
                    .map(ParamReport::badSamples).toList());
            assertEquals(check(model, loss, 1, Reduction.MEAN).reductions().get(0).params().stream()
                    .map(ParamReport::badSamples).toList(), bothRounding.reductions().get(1).params().stream()
                    .map(ParamReport::badSamples).toList());
            assertSameReduction(sum.reductions().get(0), both.reductions().get(0), 0);
            // The mean from the scaled sum gradient is the mean backward's to rounding (bit for bit
            // where the multiple is a power of two): verdicts the same, |c - r| within ~1e-7.
            assertSameReduction(mean.reductions().get(0), both.reductions().get(1), 1e-4);
            List<Failure> twoPasses = new ArrayList<>(sum.failures());
            twoPasses.addAll(mean.failures());
            assertEquals(keys(twoPasses), keys(both.failures()));

            Map<Reduction, Map<String, Tensor>> candidates = new LinkedHashMap<>();
            try (Batch batch = new Batch(List.of(inputs()), targetsOf(loss), 0, 0)) {
                for (Reduction r : Reduction.values()) {
                    candidates.put(r, perturbedReference().perSampleGradients(model, batch, Loss.named(loss), r));
                }
            }
            try (PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(inputs()).targets(targetsOf(loss))
                    .loss(Loss.named(loss)).probes(false).toleranceRule(ToleranceRule.ALLCLOSE).build()) {
                assertEquals(keys(both.failures()), keys(check.run(stored(candidates)).failures()));
                // Correct gradients: the allclose rule has no failure to measure the rounding of.
                Map<Reduction, Map<String, Tensor>> correct = new LinkedHashMap<>();
                for (Reduction r : Reduction.values()) {
                    correct.put(r, Engines.microbatch().perSampleGradients(model, check.batch(), Loss.named(loss), r));
                }
                forwards.set(0);
                assertTrue(check.run(stored(correct)).passed());
            }
            // One forward per sample; cross_entropy adds one that tells the class count, and a mean
            // backward of its own for sample 2, whose positions are all ignored.
            long expected = "cross_entropy".equals(loss) ? B + 2 : B;
            assertEquals(expected, forwards.get(), "forwards of the reference for both reductions");
        }
    }

    /** Returns new handles onto the gradients stored for each reduction (the check closes them). */
    private static GradSampler stored(Map<Reduction, Map<String, Tensor>> candidates) {
        return new GradSampler() {
            @Override
            public String name() {
                return "stored";
            }

            @Override
            public Map<String, Tensor> perSampleGradients(Model m, Batch b, Loss l, Reduction reduction) {
                Map<String, Tensor> handles = new LinkedHashMap<>();
                candidates.get(reduction).forEach((name, t) -> handles.put(name, new Tensor(t)));
                return handles;
            }
        };
    }

    @Test
    void aCustomLossTakesOnePassPerReductionAndGivesTheSameReport() {
        AtomicInteger calls = new AtomicInteger();
        try (Model model = positionwiseModel(new AtomicInteger());
             Loss custom = Loss.custom("abs sum", (out, targets, reduction) -> {
                 calls.incrementAndGet();
                 return reduction == Reduction.SUM ? out.abs().sum() : out.abs().mean();
             });
             Batch batch = Batch.of(inputs())) {
            Map<Reduction, Map<String, Tensor>> candidates = new LinkedHashMap<>();
            for (Reduction r : Reduction.values()) {
                candidates.put(r, Engines.microbatch().perSampleGradients(model, batch, custom, r));
            }
            calls.set(0);
            try (PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(inputs()).loss(custom)
                    .probes(false).threads(2).toleranceRule(ToleranceRule.ALLCLOSE).build()) {
                assertTrue(check.run(stored(candidates)).passed());
            }
            assertEquals(2 * B, calls.get(), "one loss per sample and reduction");
            CheckReport both;
            try (PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(inputs()).loss(custom)
                    .probes(false).threads(2).build()) {
                both = check.run(stored(candidates));
            }
            for (int k = 0; k < 2; k++) {
                try (PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(inputs()).loss(custom)
                        .probes(false).reduction(Reduction.values()[k]).build()) {
                    assertEquals(check.run(stored(candidates)).reductions().get(0), both.reductions().get(k));
                }
            }
            assertTrue(both.passed(), both::table);
        }
    }

    private static void assertSameReduction(ReductionReport expected, ReductionReport actual, double rtol) {
        assertEquals(expected.reduction(), actual.reduction());
        assertEquals(expected.passed(), actual.passed());
        for (int p = 0; p < expected.params().size(); p++) {
            ParamReport e = expected.params().get(p), a = actual.params().get(p);
            String where = expected.reduction() + " / " + e.name();
            assertEquals(e.badSamples(), a.badSamples(), where);
            assertEquals(e.worstSample(), a.worstSample(), where);
            assertEquals(e.nonFinite(), a.nonFinite(), where);
            assertClose(e.sampleMaxAbsErr(), a.sampleMaxAbsErr(), rtol, ROUNDING, where);
            // in units of the tolerance, whose atol (1e-5) is 100 × that rounding
            assertClose(e.sampleMaxTolRatio(), a.sampleMaxTolRatio(), rtol, ROUNDING / 1e-5, where);
        }
    }

    private static void assertClose(List<Double> expected, List<Double> actual, double rtol, double atol,
                                    String where) {
        assertEquals(expected.size(), actual.size(), where);
        for (int i = 0; i < expected.size(); i++) {
            double e = expected.get(i), a = actual.get(i);
            assertTrue(Math.abs(e - a) <= rtol * Math.abs(e) + atol, where + " sample " + i + ": " + e + " vs " + a);
        }
    }

    private static List<String> keys(List<Failure> failures) {
        return failures.stream().map(f -> f.reduction() + "/" + f.param() + "/" + f.sample() + "/" + f.kind()).toList();
    }
}
