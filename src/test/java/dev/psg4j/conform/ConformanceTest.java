package dev.psg4j.conform;

import dev.psg4j.check.Batch;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.check.Reduction;
import dev.psg4j.conform.demo.DemoSamplers;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.report.ConformanceReport;
import dev.psg4j.report.ConformanceRow;
import dev.psg4j.report.ConformanceVerdict;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * psg4j conform's runner: the vmap engine and the microbatch reference pass every row of the
 * layer matrix; the demo's broken hooks-style samplers fail exactly the configurations of their
 * bug (at every B and reduction) and pass the rest they claim; unclaimed layers are skipped with
 * a reason; a throwing sampler is an error row. Each run prints its rows and seconds.
 */
class ConformanceTest {
    private static final List<String> GROUPED_CONVS = List.of(
            "Conv1d(2->4, k=3, groups=2) on 7", "Conv1d(3->3, k=3, groups=3) on 7",
            "Conv1d(2->4, k=3, groups=2, bias=false) on 7",
            "Conv2d(2->4, k=3, groups=2) on 7x7", "Conv2d(3->3, k=3, groups=3) on 7x7",
            "Conv2d(2->4, k=3, groups=2, bias=false) on 7x7",
            "Conv3d(2->4, k=3, groups=2) on 5x5x5", "Conv3d(3->3, k=3, groups=3) on 5x5x5",
            "Conv3d(2->4, k=3, groups=2, bias=false) on 5x5x5");
    private static final List<String> USED_TWICE = List.of(
            "Sequential(fc: Linear(4->4), ReLU, fc again) mse on [B, 4] (module used twice)",
            "Sequential(fc: Linear(4->4), Tanh, fc again, Linear(4->3)) cross-entropy on [B, 4] (module used twice)",
            "Sequential(conv: Conv2d(2->2, k=3, padding=1), ReLU, conv again) mse on [B, 2, 5, 5] (module used twice)");
    private static final String TIME_FIRST_LINEAR = "Linear(5->3) time-first on [T=4, B, 5], batch dim 1";

    private static ConformanceReport timed(String what, Conformance run) {
        ConformanceReport report = run.run();
        System.out.printf(Locale.ROOT, "conformance %s: %d rows (%d ran), %.1f s%n", what, report.totals().rows(),
                report.totals().ran(), report.seconds());
        return report;
    }

    private static Set<String> configurations(ConformanceReport report, ConformanceVerdict verdict) {
        return report.rows(verdict).stream().map(ConformanceRow::configuration).collect(Collectors.toCollection(TreeSet::new));
    }

    @Test
    void vmapPassesEveryRowOfTheMatrix() {
        // B = 8 (FrontendVmapMatrixTest runs every configuration at B = 3 against microbatch)
        ConformanceReport report = timed("vmap", Conformance.of(Engines.vmap()).batchSizes(8)
                .reductions(Reduction.SUM));
        assertTrue(report.passed(), report::summary);
        assertEquals(report.totals().rows(), report.totals().passed(), report::summary);
        int configurations = LayerMatrix.configurations().size();
        assertEquals(configurations, report.totals().rows());
        assertTrue(report.rows().stream().allMatch(r -> r.maxTolRatio() != null && r.maxTolRatio() <= 1 && r.param() != null));
        ConformanceReport back = ConformanceReport.fromJson(report.toJson());
        assertEquals(report, back);
    }

    @Test
    void theMicrobatchReferencePassesEveryRow() {
        ConformanceReport report = timed("microbatch", Conformance.of(Engines.microbatch()).batchSizes(3)
                .reductions(Reduction.MEAN));
        assertTrue(report.passed(), report::summary);
        assertEquals(report.totals().rows(), report.totals().passed(), report::summary);
    }

    @Test
    void aCorrectHooksSamplerPassesWhatItClaimsAndSkipsTheRestSayingWhy() {
        ConformanceReport report = timed("demo-hooks", Conformance.of(DemoSamplers.hooks()).batchSizes(3)
                .reductions(Reduction.SUM));
        assertTrue(report.passed(), report::summary);
        assertEquals(0, report.totals().failed() + report.totals().error(), report::summary);
        Set<String> ran = configurations(report, ConformanceVerdict.PASSED);
        assertTrue(ran.contains(TIME_FIRST_LINEAR) && ran.containsAll(GROUPED_CONVS) && ran.containsAll(USED_TWICE), ran::toString);
        for (ConformanceRow skipped : report.rows(ConformanceVerdict.SKIPPED)) {
            assertTrue(skipped.message().startsWith("the sampler does not claim "), skipped::message);
            assertTrue(skipped.maxAbsErr() == null && skipped.param() == null);
        }
        assertTrue(configurations(report, ConformanceVerdict.SKIPPED).stream().anyMatch(n -> n.startsWith("LSTM")));
        assertTrue(configurations(report, ConformanceVerdict.SKIPPED).stream().anyMatch(n -> n.startsWith("ConvTranspose")));
    }

    /** The broken samplers fail exactly their configurations, at both reductions and every B asked, and nothing else. */
    private static void assertFailsExactly(GradSampler sampler, List<String> expected) {
        ConformanceReport report = timed(sampler.name(), Conformance.of(sampler).batchSizes(3, 8)
                .only(LayerMatrix.TIME_FIRST + "|groups=|used twice|^Linear|^Conv[123]d\\(2->4, k=3\\)|Sequential\\(Conv2d, ReLU"));
        assertFalse(report.passed());
        assertEquals(0, report.totals().error(), report::summary);
        assertEquals(new TreeSet<>(expected), configurations(report, ConformanceVerdict.FAILED), report::summary);
        for (String name : expected) {
            List<ConformanceRow> rows = report.rows().stream().filter(r -> r.configuration().equals(name)).toList();
            assertEquals(4, rows.size(), name);  // B = 3, 8 × sum, mean
            assertTrue(rows.stream().allMatch(r -> r.verdict() == ConformanceVerdict.FAILED), name);
        }
        assertTrue(report.totals().passed() > 0, report::summary);
    }

    @Test
    void aBatchFirstOnlyLinearSamplerFailsExactlyTheTimeFirstLinearRows() {
        assertFailsExactly(DemoSamplers.linearBatchFirst(), List.of(TIME_FIRST_LINEAR));
    }

    @Test
    void aConvSamplerThatIgnoresGroupsFailsExactlyTheGroupedAndDepthwiseRowsOnTheWeight() {
        assertFailsExactly(DemoSamplers.convIgnoresGroups(), GROUPED_CONVS);
        ConformanceReport report = Conformance.of(DemoSamplers.convIgnoresGroups()).batchSizes(3).reductions(Reduction.SUM)
                .only("groups=3").run();
        assertTrue(report.rows(ConformanceVerdict.FAILED).stream().allMatch(r -> "weight".equals(r.param())
                && r.sample() != null && r.maxTolRatio() > 1), report::table);
    }

    @Test
    void aSamplerKeepingTheLastUseFailsExactlyTheModuleUsedTwiceRows() {
        assertFailsExactly(DemoSamplers.keepsLastUse(), USED_TWICE);
    }

    @Test
    void aThrowingSamplerIsAnErrorRowAndTheRunGoesOn() {
        GradSampler throwing = new GradSampler() {
            @Override
            public String name() {
                return "throws-on-bias-free";
            }

            @Override
            public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
                if (!model.trainableParameters().keySet().stream().anyMatch(n -> n.endsWith("bias"))) {
                    throw new IllegalStateException("no bias here");
                }
                return Engines.vmap().perSampleGradients(model, batch, loss, reduction);
            }
        };
        ConformanceReport report = Conformance.of(throwing).batchSizes(3).only("^Linear").run();
        assertFalse(report.passed());
        assertEquals(Set.of("Linear(5->3, bias=false) on [B, 5]"), configurations(report, ConformanceVerdict.ERROR));
        assertTrue(report.rows(ConformanceVerdict.ERROR).get(0).message().contains("IllegalStateException: no bias here"));
        assertTrue(report.totals().passed() > 0);
    }

    @Test
    void theMatrixCoversTheLayerKindsAndCasesItPromises() {
        List<Configuration> all = LayerMatrix.configurations();
        Set<String> kinds = new TreeSet<>();
        List<String> twoInputs = new ArrayList<>();
        List<String> crossEntropy = new ArrayList<>();
        List<String> timeFirst = new ArrayList<>();
        for (Configuration c : all) {
            try (PointerScope scope = new PointerScope()) {
                torch.manual_seed(1);
                try (Instance instance = c.build().apply(2)) {
                    kinds.addAll(instance.layerKinds());
                    if (instance.inputs().size() == 2) {
                        twoInputs.add(c.name());
                    }
                    if (instance.loss() == Loss.CROSS_ENTROPY) {
                        crossEntropy.add(c.name());
                    }
                    if (instance.batchDim() != 0) {
                        timeFirst.add(c.name());
                    }
                    if (c.name().endsWith(LayerMatrix.USED_TWICE)) {
                        assertFalse(instance.model().aliases().isEmpty(), c.name());
                    }
                    if (c.name().contains(LayerMatrix.BATCH_OF_ONE)) {
                        assertEquals(1, instance.inputs().get(0).size(instance.batchDim()), c.name());
                    }
                }
            }
        }
        assertTrue(kinds.containsAll(List.of("Linear", "Bilinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
                "ConvTranspose2d", "ConvTranspose3d", "Embedding", "EmbeddingBag", "LayerNorm", "GroupNorm",
                "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "BatchNorm1d", "RNN", "GRU", "LSTM",
                "MultiheadAttention")), kinds::toString);
        assertFalse(kinds.contains("Sequential"), kinds::toString);
        assertEquals(2, twoInputs.size(), twoInputs::toString);
        assertTrue(crossEntropy.size() >= 4, crossEntropy::toString);
        assertTrue(timeFirst.contains(TIME_FIRST_LINEAR), timeFirst::toString);
        assertEquals(3, all.stream().filter(c -> c.fixedBatchSize().isPresent()).count());
        assertEquals(USED_TWICE, all.stream().map(Configuration::name).filter(n -> n.endsWith(LayerMatrix.USED_TWICE)).toList());
    }
}
