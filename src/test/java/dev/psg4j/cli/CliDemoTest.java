package dev.psg4j.cli;

import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Reduction;
import dev.psg4j.cli.demo.Demo;
import dev.psg4j.cli.demo.LinearGradSampler;
import dev.psg4j.cli.demo.Sabotage;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.FailureKind;

import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CliDemoTest {
    @Test
    void demoExitsZeroWithOneVerdictLinePerExample() {
        CliRun run = CliRun.of("demo");
        assertEquals(0, run.status(), run::toString);
        assertEquals("", run.err(), run::toString);
        List<String> verdicts = run.out().lines().filter(l -> l.startsWith("PASS ") || l.startsWith("FAIL ")).toList();
        assertEquals(12, verdicts.size(), run::toString);
        assertTrue(verdicts.stream().allMatch(l -> l.contains("(as expected)")), run::toString);
        assertTrue(run.out().contains("linear/swapped-1-3") && run.out().contains("sum / fc.weight / sample 1:"),
                run::toString);
        assertTrue(run.out().contains("sum / fc.bias / sample 5: the candidate has 1 NaN/Inf"), run::toString);
        assertTrue(run.out().contains("== linear-batch-first on"), run::toString);
        assertTrue(run.out().lines().filter(l -> l.startsWith("PASS ") && l.contains("vmap")).count() == 2, run::toString);
        assertTrue(run.out().contains("BatchNorm1d train mode") && run.out().contains("Mixing starts in submodule 'bn'"),
                run::toString);
        for (String broken : List.of("demo-linear-batch-first", "demo-conv-ignores-groups", "demo-keeps-last-use")) {
            assertTrue(run.out().lines().anyMatch(l -> l.startsWith(broken) && l.contains("(as expected)")), run::toString);
        }
        assertTrue(run.out().contains("    failed: Linear(5->3) time-first on [T=4, B, 5], batch dim 1"), run::toString);
    }

    @Test
    void demoOutcomesAreAsExpected() {
        List<Demo.Outcome> outcomes = Demo.run();
        assertTrue(outcomes.stream().allMatch(Demo.Outcome::asExpected));
        assertEquals(4, outcomes.stream().filter(o -> o.report().passed()).count());
    }

    @Test
    void linearGradSamplerMatchesTheReferenceOnAPlainLinearLayer() {
        torch.manual_seed(7);
        try (Model model = Models.module(new LinearImpl(4, 2));
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(torch.randn(5, 4)).build()) {
            CheckReport report = check.run(LinearGradSampler.of("weight", "bias"));
            assertTrue(report.passed(), report::table);
            CheckReport unscaled = check.run(Sabotage.unscaledMean(LinearGradSampler.of("weight", "bias")));
            assertFalse(unscaled.passed());
            assertTrue(unscaled.reductions().get(0).passed(), "sum is unaffected by the mean scale");
            assertEquals("mean", unscaled.failures().get(0).reduction());
        }
    }

    @Test
    void linearGradSamplerWithoutBiasAndMseTargets() {
        torch.manual_seed(8);
        Tensor weight = torch.randn(3, 6);
        weight.set_requires_grad(true);
        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("w", weight);
        try (Model model = Models.function("x @ w^T", params, (in, p) -> torch.linear(in.get(0), p.get("w")));
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(torch.randn(4, 2, 6))
                     .targets(torch.randn(4, 2, 3)).loss(dev.psg4j.check.Loss.MSE).build()) {
            CheckReport report = check.run(LinearGradSampler.of("w", null));
            assertTrue(report.passed(), report::table);
        }
    }

    @Test
    void transposeTrapFoolsTheBatchFirstSamplerOnly() {
        try (Model model = Demo.transposeTrap();
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(torch.randn(6, 6, 4))
                     .reduction(Reduction.SUM).build()) {
            assertTrue(check.run(Engines.microbatch()).passed());
            CheckReport trapped = check.run(Demo.batchFirstSamplerOnTrap());
            assertFalse(trapped.passed());
            assertEquals(FailureKind.VALUE, trapped.failures().get(0).kind());
            assertEquals("fc.weight", trapped.failures().get(0).param());
        }
    }
}
