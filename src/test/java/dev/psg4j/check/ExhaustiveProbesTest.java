package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.DiagnosisKind;
import dev.psg4j.report.ProbeReport;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The exhaustive batch-independence probe on mixing models written for it (Java forwards): mixing
 * confined to one or two samples anywhere in batches of 6 to 64, neighbour-only attention (a
 * sequence-packing bug), dense mixing, mixing only values show ({@code .item()}), weak mixing —
 * each flagged with exactly its samples and pairs, at the documented cost; NaN/Inf, the output's
 * samples dimension and integer outputs get their own answers.
 */
class ExhaustiveProbesTest {
    private static final long FEATURES = 5;

    /** h = x wᵀ, then {@code mix} applied to h when it holds the whole batch (a one-sample batch runs clean). */
    private static Model model(String description, long batch, UnaryOperator<Tensor> mix) {
        Tensor w = torch.randn(3, FEATURES).requires_grad_(true);
        return Models.function(description, Map.of("w", w), (in, p) -> {
            Tensor h = in.get(0).matmul(p.get("w").t());
            return h.size(0) == batch ? mix.apply(h) : h;
        });
    }

    /** h + M h, with M[target][source] = 1 for each pair: sample target's output gets sample source's. */
    private static Model pairs(long batch, int[]... targetSource) {
        Tensor m = torch.zeros(batch, batch);
        for (int[] pair : targetSource) {
            m.select(0, pair[0]).select(0, pair[1]).fill_(new Scalar(1.0));
        }
        return model("pair mixing", batch, h -> h.add(m.matmul(h)));
    }

    private static ProbeReport probe(Model model, long batch, int probeSamples) {
        try (Batch b = Batch.of(torch.randn(batch, FEATURES))) {
            return Probes.report(model, b, probeSamples);
        }
    }

    private static int partitionVjps(long batch) {
        int bits = 0;
        while ((1L << bits) < batch) {
            bits++;
        }
        return 2 * bits;
    }

    @ParameterizedTest(name = "B={0}: sample {1} <- sample {2}")
    @CsvSource({"6, 1, 4", "8, 0, 7", "8, 7, 0", "8, 3, 4", "13, 12, 5", "16, 9, 6", "32, 31, 30", "64, 17, 40",
            "64, 0, 63", "64, 42, 41"})
    void mixingConfinedToOnePairIsFoundAnywhere(long batch, int target, int source) {
        torch.manual_seed(batch * 100 + target);
        try (Model m = pairs(batch, new int[] {target, source})) {
            ProbeReport report = probe(m, batch, Probes.DEFAULT_PROBE_SAMPLES);
            assertFalse(report.passed(), report::toJson);
            assertEquals(Map.of(target, List.of(source)), report.leaks(), report::toJson);
            assertEquals(List.of(target), report.affectedSamples(), report::toJson);
            assertEquals(List.of(source), report.sourceSamples(), report::toJson);
            assertEquals(List.of(target), report.differsAlone(), report::toJson);
            assertFalse(report.dense(), report::toJson);
            assertTrue(report.leaksComplete(), report::toJson);
            // the partition passes, then one VJP naming the one flagged sample's sources
            assertEquals(partitionVjps(batch) + 1, report.passes().vjps(), report::toJson);
            Diagnosis d = report.diagnoses().get(0);
            assertEquals(List.of(target), d.samples());
            assertTrue(d.message().contains("sample " + target + "'s output depends on sample " + source), d::message);
        }
    }

    @Test
    void samplesFiveAndSixOfEightMixingEachOtherAreBothNamed() {
        torch.manual_seed(56);
        try (Model m = pairs(8, new int[] {5, 6}, new int[] {6, 5})) {
            ProbeReport report = probe(m, 8, Probes.DEFAULT_PROBE_SAMPLES);
            assertEquals(Map.of(5, List.of(6), 6, List.of(5)), report.leaks(), report::toJson);
            assertEquals(List.of(5, 6), report.affectedSamples());
            assertFalse(report.dense());
            String message = report.diagnoses().get(0).message();
            assertTrue(message.contains("sample 5's output depends on sample 6; sample 6's output depends on sample 5"),
                    message);
        }
    }

    @Test
    void aCleanProbeCostsTwoForwardsTheBitPartitionVjpsAndOneVmappedForwardAtAnyB() {
        for (long batch : new long[] {2, 7, 8, 33, 256}) {
            torch.manual_seed(batch);
            Tensor w = torch.randn(3, FEATURES).requires_grad_(true);
            try (Model m = Models.function("clean", Map.of("w", w), (in, p) -> torch.tanh(in.get(0).matmul(p.get("w").t())))) {
                ProbeReport report = probe(m, batch, Probes.DEFAULT_PROBE_SAMPLES);
                assertTrue(report.passed(), report::toJson);
                assertEquals(new ProbeReport.Passes(2, partitionVjps(batch), 1, 0), report.passes(), report::toJson);
                assertEquals(dev.psg4j.report.AloneRoute.VMAP, report.aloneRoute());
                assertTrue(report.probeMs() > 0);
            }
        }
    }

    /**
     * Attention over the batch masked to |i - j| <= 1, scores scaled by 1/sqrt(d) as attention does:
     * what a packing bug that lets neighbouring sequences see each other does.
     */
    private static Model neighbourAttention(long batch) {
        Tensor band = torch.ones(batch, batch).triu(-1).tril(1);
        Tensor bias = band.sub(new Scalar(1.0)).mul(new Scalar(1e9));  // 0 on the band, -1e9 elsewhere
        return model("neighbour attention", batch,
                h -> h.matmul(h.t()).div(new Scalar(Math.sqrt(3.0))).add(bias).softmax(1).matmul(h));
    }

    @ParameterizedTest(name = "B={0}")
    @CsvSource({"8", "20", "64"})
    void attentionLeakingOnlyBetweenNeighboursIsFoundForEverySample(long batch) {
        torch.manual_seed(batch);
        try (Model m = neighbourAttention(batch)) {
            ProbeReport all = probe(m, batch, (int) batch);
            Map<Integer, List<Integer>> expected = new TreeMap<>();
            for (int i = 0; i < batch; i++) {
                List<Integer> neighbours = new ArrayList<>();
                if (i > 0) {
                    neighbours.add(i - 1);
                }
                if (i < batch - 1) {
                    neighbours.add(i + 1);
                }
                expected.put(i, neighbours);
            }
            assertEquals(expected, new TreeMap<>(all.leaks()), all::toJson);
            assertEquals(new ArrayList<>(expected.keySet()), all.affectedSamples());
            assertTrue(all.dense() && all.leaksComplete(), all::toJson);

            ProbeReport bounded = probe(m, batch, 3);
            assertEquals(all.affectedSamples(), bounded.affectedSamples(), "the bound does not narrow the probe");
            assertEquals(3, bounded.leaks().size(), bounded::toJson);
            bounded.leaks().forEach((i, from) -> assertEquals(expected.get(i), from, bounded::toJson));
            assertFalse(bounded.leaksComplete());
        }
    }

    @Test
    void neighboursWhoseOutputsMoveBelowTheRoundingToleranceAreStillAllAffected() {
        torch.manual_seed(20);
        long batch = 20;
        Tensor band = torch.ones(batch, batch).triu(-1).tril(1);
        Tensor bias = band.sub(new Scalar(1.0)).mul(new Scalar(1e9));
        // unscaled scores: most samples attend almost only to themselves (weights ~1e-6 on neighbours)
        try (Model m = model("sharp neighbour attention", batch, h -> h.matmul(h.t()).add(bias).softmax(1).matmul(h))) {
            ProbeReport report = probe(m, batch, 3);
            assertTrue(report.differsAlone().size() < batch, "the value route alone misses some: " + report.toJson());
            assertEquals(batch, report.affectedSamples().size(), report::toJson);
            assertEquals(batch, report.sourceSamples().size(), report::toJson);
            // 2 log2(B) partition VJPs, 3 naming sources, 1 + 2 log2(B) on the target side
            assertEquals(10 + 3 + 11, report.passes().vjps(), report::toJson);
        }
    }

    @Test
    void aBatchMeanIsDenseEverySampleAffectedAndAFewNamed() {
        torch.manual_seed(3);
        long batch = 32;
        Tensor mean = torch.ones(batch, batch).div(new Scalar((double) batch));
        try (Model m = model("batch mean", batch, h -> h.sub(mean.matmul(h)))) {
            ProbeReport report = probe(m, batch, 4);
            assertEquals(batch, report.affectedSamples().size(), report::toJson);
            assertEquals(batch, report.sourceSamples().size(), report::toJson);
            assertTrue(report.dense() && !report.leaksComplete(), report::toJson);
            assertEquals(List.of(0, 10, 20, 31), new ArrayList<>(new TreeMap<>(report.leaks()).keySet()), report::toJson);
            report.leaks().forEach((i, from) -> assertEquals(batch - 1, from.size()));
            assertTrue(report.diagnoses().get(0).message().contains("the outputs of 32 of 32 samples depend on other"),
                    report.diagnoses().get(0)::message);
        }
    }

    @Test
    void aCumulativeSumLeaksEveryEarlierSampleIntoEveryLaterOne() {
        torch.manual_seed(4);
        long batch = 8;
        Tensor lower = torch.ones(batch, batch).tril(0);
        try (Model m = model("cumsum", batch, h -> lower.matmul(h))) {
            ProbeReport report = probe(m, batch, 8);
            assertEquals(List.of(1, 2, 3, 4, 5, 6, 7), report.affectedSamples(), report::toJson);
            for (int i = 1; i < batch; i++) {
                List<Integer> earlier = new ArrayList<>();
                for (int j = 0; j < i; j++) {
                    earlier.add(j);
                }
                assertEquals(earlier, report.leaks().get(i), report::toJson);
            }
            assertEquals(List.of(0, 1, 2, 3, 4, 5, 6), report.sourceSamples());
        }
    }

    @Test
    void aBatchStatisticThroughItemIsSeenOnlyByRunningEverySampleAlone() {
        torch.manual_seed(5);
        long batch = 12;
        Tensor w = torch.randn(3, FEATURES).requires_grad_(true);
        try (Model m = Models.function("scaled by the batch's sum", Map.of("w", w), (in, p) -> in.get(0)
                .matmul(p.get("w").t()).mul(new Scalar(in.get(0).sum().item_double())))) {
            ProbeReport report = probe(m, batch, 8);
            assertFalse(report.passed());
            assertTrue(report.leaks().isEmpty() && report.sourceSamples().isEmpty(), "no gradient sees .item()");
            assertEquals(dev.psg4j.report.AloneRoute.PER_SAMPLE, report.aloneRoute(), "vmap cannot run .item()");
            assertEquals(batch, report.differsAlone().size(), report::toJson);
            assertEquals(batch, report.passes().sampleForwards());
            assertTrue(report.diagnoses().get(0).message().contains("change when they run alone"));
        }
    }

    @Test
    void newMixingModelsAreFlaggedWithTheRightPairs() {
        torch.manual_seed(6);
        long batch = 24;
        // a roll by 3 over the batch (an off-by-three packing offset): sample i gets sample i - 3's features
        Tensor roll = torch.zeros(batch, batch);
        for (int i = 0; i < batch; i++) {
            roll.select(0, i).select(0, (int) ((i + batch - 3) % batch)).fill_(new Scalar(1.0));
        }
        try (Model m = model("roll by 3", batch, h -> h.add(roll.matmul(h)))) {
            ProbeReport report = probe(m, batch, (int) batch);
            for (int i = 0; i < batch; i++) {
                assertEquals(List.of((int) ((i + batch - 3) % batch)), report.leaks().get(i), report::toJson);
            }
            assertFalse(report.dense(), "every source has one target: decoded from the partition passes");
        }
        // pairs of neighbours summed (two sequences packed into one slot)
        Tensor pairsSummed = torch.zeros(batch, batch);
        for (int i = 0; i < batch; i++) {
            pairsSummed.select(0, i).select(0, i ^ 1).fill_(new Scalar(1.0));
        }
        try (Model m = model("packed pairs", batch, h -> h.add(pairsSummed.matmul(h)))) {
            ProbeReport report = probe(m, batch, (int) batch);
            for (int i = 0; i < batch; i++) {
                assertEquals(List.of(i ^ 1), report.leaks().get(i), report::toJson);
            }
        }
        // a leak of one part in 10^7: below every rounding tolerance, still an exact nonzero gradient
        Tensor weak = torch.zeros(batch, batch);
        weak.select(0, 2).select(0, 19).fill_(new Scalar(1e-7));
        try (Model m = model("weak leak", batch, h -> h.add(weak.matmul(h)))) {
            ProbeReport report = probe(m, batch, 8);
            assertEquals(Map.of(2, List.of(19)), report.leaks(), report::toJson);
        }
    }

    @Test
    void tokenIdsTakeTheGradientRouteFromTheEmbeddingsOutput() {
        torch.manual_seed(11);
        long batch = 16;
        Tensor table = torch.randn(20, 3).requires_grad_(true);
        Tensor m = torch.zeros(batch, batch);
        m.select(0, 3).select(0, 11).fill_(new Scalar(1.0));
        try (Model model = Models.function("embedding, sample 3 gets sample 11's", Map.of("table", table), (in, p) -> {
                 Tensor h = torch.embedding(p.get("table"), in.get(0)).sum(1);  // [B, 3]
                 return h.size(0) == batch ? h.add(m.matmul(h)) : h;
             });
             Batch ids = Batch.of(torch.randint(20, new long[] {batch, 4}))) {
            ProbeReport report = Probes.report(model, ids, 8);
            assertEquals(dev.psg4j.report.ProbeMethod.INTERMEDIATE_GRADIENT, report.method(), report::toJson);
            assertEquals(Map.of(3, List.of(11)), report.leaks(), report::toJson);
            assertEquals(List.of(11), report.sourceSamples());
            assertFalse(report.dense());
        }
    }

    @Test
    void nanInAnInputSampleIsNonFiniteNamingTheSampleNotNonDeterministic() {
        torch.manual_seed(7);
        try (Model m = model("linear", 6, h -> h)) {
            Tensor x = torch.randn(6, FEATURES);
            x.select(0, 4).select(0, 2).fill_(new Scalar(Double.NaN));
            try (Batch b = Batch.of(x)) {
                ProbeReport report = Probes.report(m, b, 8);
                assertFalse(report.passed());
                assertEquals(dev.psg4j.report.NonFiniteSite.INPUT, report.nonFiniteIn());
                assertEquals(List.of(4), report.nonFiniteSamples());
                assertNull(report.batchIndependent());
                Diagnosis d = report.diagnoses().get(0);
                assertEquals(DiagnosisKind.NON_FINITE, d.kind());
                assertEquals(List.of(4), d.samples());
                assertTrue(d.message().contains("the input of sample 4 holds NaN or Inf"), d::message);
                assertFalse(report.diagnoses().stream().anyMatch(x2 -> x2.kind() == DiagnosisKind.NON_DETERMINISTIC));
            }
        }
    }

    @Test
    void infInTheOutputIsNonFiniteNamingTheSamples() {
        torch.manual_seed(8);
        Tensor w = torch.randn(3, FEATURES).requires_grad_(true);
        try (Model m = Models.function("log of a linear", Map.of("w", w), (in, p) -> in.get(0).matmul(p.get("w").t()).log());
             Batch b = Batch.of(torch.randn(6, FEATURES))) {
            ProbeReport report = Probes.report(m, b, 8);
            assertEquals(dev.psg4j.report.NonFiniteSite.OUTPUT, report.nonFiniteIn(), report::toJson);
            assertFalse(report.nonFiniteSamples().isEmpty());
            assertEquals(DiagnosisKind.NON_FINITE, report.diagnoses().get(0).kind());
            assertTrue(report.diagnoses().get(0).message().contains("the output of "), report.diagnoses().get(0)::message);
            assertEquals(1, report.diagnoses().size(), "not also non-deterministic");
        }
    }

    @Test
    void theOutputsSamplesAreInTheBatchDimensionElseInItsOneDimensionOfSizeB() {
        torch.manual_seed(9);
        Tensor w = torch.randn(4, FEATURES).requires_grad_(true);
        try (Model transposed = Models.function("[4, B]", Map.of("w", w), (in, p) -> in.get(0).matmul(p.get("w").t()).t());
             Model square = Models.function("[1, B, B]", Map.of("w", w), (in, p) -> {
                 Tensor h = in.get(0).matmul(p.get("w").t());
                 return h.matmul(h.t()).unsqueeze(0);
             });
             Batch b = Batch.of(torch.randn(6, FEATURES))) {
            assertTrue(Probes.report(transposed, b, 8).passed(), "[4, 6] at B = 6: the samples are in dimension 1");
            BadInputException e = assertThrows(BadInputException.class, () -> Probes.report(square, b, 8));
            assertTrue(e.getMessage().contains("[1, 6, 6]") && e.getMessage().contains("batch size 6"), e::getMessage);
        }
    }

    @Test
    void anIntegerOutputAsksForAFloatingPointOne() {
        Tensor w = torch.randn(4, FEATURES).requires_grad_(true);
        try (Model argmax = Models.function("argmax", Map.of("w", w), (in, p) -> in.get(0).matmul(p.get("w").t()).argmax());
             Batch b = Batch.of(torch.randn(6, FEATURES))) {
            BadInputException e = assertThrows(BadInputException.class, () -> Probes.report(argmax, b, 8));
            assertTrue(e.getMessage().contains("floating-point output") && e.getMessage().contains("not argmax"),
                    e::getMessage);
        }
    }

    @Test
    void probeSamplesIsBoundedBeforeNativeCode() {
        try (Model m = model("linear", 6, h -> h); Batch b = Batch.of(torch.randn(6, FEATURES))) {
            assertThrows(BadInputException.class, () -> Probes.report(m, b, 0));
            assertThrows(BadInputException.class, () -> Probes.report(m, b, Probes.MAX_PROBE_SAMPLES + 1));
            assertThrows(BadInputException.class, () -> PerSampleCheck.builder().probeSamples(0));
            assertThrows(BadInputException.class, () -> PerSampleCheck.builder().probeSamples(5000));
        }
    }

    @Test
    void aCheckNamesSourcesForAsManySamplesAsItsBuilderSays() {
        torch.manual_seed(10);
        long batch = 16;
        Tensor mean = torch.ones(batch, batch).div(new Scalar((double) batch));
        try (Model m = model("batch mean", batch, h -> h.sub(mean.matmul(h)));
             PerSampleCheck two = PerSampleCheck.builder().model(m).inputs(torch.randn(batch, FEATURES))
                     .probeSamples(2).build()) {
            Diagnosis d = two.run(dev.psg4j.engine.Engines.microbatch()).diagnoses().get(0);
            assertEquals(DiagnosisKind.BATCH_MIXING, d.kind());
            assertEquals((int) batch, d.samples().size(), "every affected sample, whatever the bound");
            assertTrue(d.message().contains("sample 0's output depends on") && d.message().contains("sample 15's output"),
                    d::message);
            assertFalse(d.message().contains("sample 7's output depends"), d::message);
        }
    }
}
