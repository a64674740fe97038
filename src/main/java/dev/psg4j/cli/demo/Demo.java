package dev.psg4j.cli.demo;

import dev.psg4j.check.GradSampler;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Reduction;
import dev.psg4j.conform.Conformance;
import dev.psg4j.conform.demo.DemoSamplers;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.ConformanceReport;
import dev.psg4j.report.ConformanceRow;
import dev.psg4j.report.ConformanceVerdict;

import org.bytedeco.pytorch.BatchNorm1dImpl;
import org.bytedeco.pytorch.BatchNormOptions;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.ReLUImpl;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * The built-in examples of {@code psg4j demo}: correct grad samplers (the vmap engine, a
 * hand-written Linear sampler) that pass, broken ones that fail, a BatchNorm in train mode (batch
 * mixing: the probes fail the check although the gradients agree), and the transpose trap, where a sampler that assumes batch-first activations is silently
 * wrong on a model that runs its Linear layer time-first. All are checked for both reductions,
 * loss l1, B = {@value #B}, with fixed seeds.
 */
public final class Demo {
    public static final int B = 8;
    public static final String TRANSPOSE_TRAP = "linear(x.transpose(0,1)).transpose(0,1), x [8,8,4]";
    public static final String BATCHNORM_TRAIN = "Sequential(fc: Linear(5,4), bn: BatchNorm1d train mode, out), x [8,5]";

    /** The conformance batch size of the demo's broken hooks-style samplers. */
    public static final long CONFORMANCE_B = 3;

    /**
     * A deliberately broken sampler run over the layer matrix: the configurations it failed and
     * those it should fail (every other row it ran passed when {@link #asExpected}).
     */
    public record ConformanceOutcome(DemoSamplers.DemoSampler demo, ConformanceReport report) {
        public Set<String> failed() {
            return report.rows().stream().filter(r -> r.verdict() != ConformanceVerdict.PASSED
                    && r.verdict() != ConformanceVerdict.SKIPPED).map(ConformanceRow::configuration)
                    .collect(Collectors.toCollection(TreeSet::new));
        }

        public Set<String> expectedFailures() {
            return report.rows().stream().filter(r -> r.verdict() != ConformanceVerdict.SKIPPED)
                    .map(ConformanceRow::configuration).filter(demo.shouldFail())
                    .collect(Collectors.toCollection(TreeSet::new));
        }

        /** It failed (no errors) exactly the configurations it should, at every B and reduction. */
        public boolean asExpected() {
            boolean everyRowOfAFailingConfigurationFailed = report.rows().stream()
                    .filter(r -> r.verdict() != ConformanceVerdict.SKIPPED && demo.shouldFail().test(r.configuration()))
                    .allMatch(r -> r.verdict() == ConformanceVerdict.FAILED);
            return report.totals().error() == 0 && !failed().isEmpty() && failed().equals(expectedFailures())
                    && everyRowOfAFailingConfigurationFailed;
        }
    }

    /** The demo's broken hooks-style samplers over the layer matrix, B = {@value #CONFORMANCE_B}, sum (their bugs are not about the reduction). */
    public static List<ConformanceOutcome> conformance() {
        List<ConformanceOutcome> out = new ArrayList<>();
        for (DemoSamplers.DemoSampler demo : DemoSamplers.broken()) {
            out.add(new ConformanceOutcome(demo, Conformance.of(demo.sampler()).batchSizes(CONFORMANCE_B)
                    .reductions(Reduction.SUM).run()));
        }
        return out;
    }

    /** One example checked: what it is, the verdict it should get, and the report it got. */
    public record Outcome(String model, boolean expectPass, CheckReport report) {
        public boolean asExpected() {
            return report.passed() == expectPass;
        }
    }

    private Demo() {
    }

    public static List<Outcome> run() {
        List<Outcome> outcomes = new ArrayList<>();

        torch.manual_seed(0);
        SequentialImpl mlp = new SequentialImpl();
        mlp.push_back("0", new LinearImpl(6, 16));
        mlp.push_back("1", new ReLUImpl());
        mlp.push_back("2", new LinearImpl(16, 3));
        try (Model model = Models.module(mlp)) {
            check(outcomes, "Sequential(Linear(6,16), ReLU, Linear(16,3)), x [8,6]", model, torch.randn(B, 6),
                    Engines.vmap(), true);
        }

        torch.manual_seed(1);
        SequentialImpl single = new SequentialImpl();
        single.push_back("fc", new LinearImpl(5, 3));
        LinearGradSampler linear = LinearGradSampler.of("fc.weight", "fc.bias");
        try (Model model = Models.module(single)) {
            String name = "Sequential(fc: Linear(5,3)), x [8,4,5]";
            Tensor x = torch.randn(B, 4, 5);
            check(outcomes, name, model, x, linear, true);
            check(outcomes, name, model, x, Sabotage.unscaledMean(linear), false);
            check(outcomes, name, model, x, Sabotage.swapSamples(linear, "fc.weight", 1, 3), false);
            check(outcomes, name, model, x, Sabotage.drop(linear, "fc.bias"), false);
            check(outcomes, name, model, x, Sabotage.transpose(linear, "fc.weight"), false);
            check(outcomes, name, model, x, Sabotage.perturb(linear, "fc.weight", 2, 0.5), false);
            check(outcomes, name, model, x, Sabotage.nan(linear, "fc.bias", 5), false);
        }

        torch.manual_seed(2);
        SequentialImpl normalized = new SequentialImpl();
        normalized.push_back("fc", new LinearImpl(5, 4));
        BatchNorm1dImpl bn = Models.forSequential(new BatchNorm1dImpl(new BatchNormOptions(4)));
        normalized.push_back("bn", bn);
        normalized.push_back("out", new LinearImpl(4, 3));
        normalized.train(true);
        try (Model model = Models.module(normalized)) {
            // vmap and the reference agree (both see one sample); the probe finds the batch statistics
            check(outcomes, BATCHNORM_TRAIN, model, torch.randn(B, 5), Engines.vmap(), false);
        }

        try (Model model = transposeTrap()) {
            Tensor x = torch.randn(B, B, 4);
            check(outcomes, TRANSPOSE_TRAP, model, x, Engines.vmap(), true);
            check(outcomes, TRANSPOSE_TRAP, model, x, Engines.microbatch(), true);
            check(outcomes, TRANSPOSE_TRAP, model, x, batchFirstSamplerOnTrap(), false);
        }
        return outcomes;
    }

    /**
     * The transpose trap: batch-independent, but its Linear layer sees x.transpose(0, 1), time-first.
     * With T == B a batch-first sampler's shapes are right and its values are not.
     */
    public static Model transposeTrap() {
        torch.manual_seed(2);
        Tensor weight = torch.randn(3, 4).mul(new org.bytedeco.pytorch.Scalar(0.5));
        weight.set_requires_grad(true);
        Tensor bias = torch.randn(3);
        bias.set_requires_grad(true);
        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("fc.weight", weight);
        params.put("fc.bias", bias);
        return Models.function(TRANSPOSE_TRAP, params,
                (inputs, p) -> torch.linear(inputs.get(0).transpose(0, 1), p.get("fc.weight"),
                        new TensorOptional(p.get("fc.bias"))).transpose(0, 1));
    }

    /** The hand-written batch-first Linear sampler, hooked around the trap's Linear layer. */
    public static GradSampler batchFirstSamplerOnTrap() {
        return LinearGradSampler.of("fc.weight", "fc.bias")
                .around(inputs -> inputs.get(0).transpose(0, 1), z -> z.transpose(0, 1)).named("linear-batch-first");
    }

    private static void check(List<Outcome> outcomes, String modelName, Model model, Tensor x, GradSampler sampler,
                              boolean expectPass) {
        try (PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(x).build()) {
            outcomes.add(new Outcome(modelName, expectPass, check.run(sampler)));
        }
    }
}
