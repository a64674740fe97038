package dev.psg4j.check;

import dev.psg4j.bench.Suite;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.DiagnosisKind;
import dev.psg4j.report.ParamReport;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.ReLUImpl;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiFunction;
import java.util.function.UnaryOperator;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Planted bugs, made from the microbatch engine's correct gradients, get exactly the diagnosis that
 * names them (kind, parameter, samples), on an MLP and a CNN, both reductions, B = 8 and 32; random
 * mismatches get none.
 */
class ValueDiagnosesTest {
    /** A planted bug: how it transforms one parameter's [B, *shape] gradient, what it should be called. */
    private record Bug(String name, BiFunction<String, Tensor, Tensor> plant, DiagnosisKind kind, Set<Integer> samples,
                       String says, Set<String> params) {
    }

    static Stream<Arguments> setups() {
        List<Arguments> out = new ArrayList<>();
        for (String model : List.of("mlp", "cnn")) {
            for (Reduction reduction : Reduction.values()) {
                for (int batch : new int[] {8, 32}) {
                    out.add(Arguments.of(model, reduction, batch));
                }
            }
        }
        return out.stream();
    }

    private static List<Bug> bugs(String model, int b) {
        Set<Integer> all = Set.copyOf(IntStream.range(0, b).boxed().toList());
        String nonSquare = model.equals("mlp") ? "0.weight" : "7.weight";
        return List.of(
                new Bug("x B", (p, g) -> g.mul(new Scalar((double) b)), DiagnosisKind.SCALED, all, "B = " + b + " times",
                        null),
                new Bug("x 1/B", (p, g) -> g.div(new Scalar((double) b)), DiagnosisKind.SCALED, all, "1/B = 1/" + b,
                        null),
                new Bug("x 2", (p, g) -> g.mul(new Scalar(2.0)), DiagnosisKind.SCALED, all, "twice", null),
                new Bug("x -1", (p, g) -> g.neg(), DiagnosisKind.SCALED, all, "opposite sign", null),
                new Bug("swap 1, 3", (p, g) -> g.index_select(0, order(b, i -> i == 1 ? 3 : i == 3 ? 1 : i)),
                        DiagnosisKind.SAMPLES_PERMUTED, Set.of(1, 3), "samples 1 and 3 hold each other's", null),
                new Bug("roll 1", (p, g) -> torch.roll(g, new long[] {1}, 0), DiagnosisKind.SAMPLES_PERMUTED, all,
                        "sample i holds sample i - 1's", null),
                new Bug("reverse", (p, g) -> torch.flip(g, 0), DiagnosisKind.SAMPLES_PERMUTED, all, "reversed", null),
                new Bug("all = mean", (p, g) -> g.sum(0).div(new Scalar((double) b)).unsqueeze(0).expand_as(g).contiguous(),
                        DiagnosisKind.SAME_GRADIENT_EVERY_SAMPLE, all, "batch mean", null),
                new Bug("transpose " + nonSquare, (p, g) -> p.equals(nonSquare) ? transposed(g) : g,
                        DiagnosisKind.TRANSPOSED, all, "transposed", Set.of(nonSquare)),
                new Bug("zero 2, 5", (p, g) -> zeroed(g, 2, 5), DiagnosisKind.ZERO_SAMPLES, Set.of(2, 5), "zero", null));
    }

    @ParameterizedTest(name = "{0} / {1} / B = {2}")
    @MethodSource("setups")
    void plantedBugsGetTheirDiagnosis(String name, Reduction reduction, int batch) {
        try (PointerScope scope = new PointerScope(); Suite suite = Suite.build(name, batch);
             PerSampleCheck check = check(suite.model(), suite.input(), reduction)) {
            Map<String, Tensor> correct = correct(suite.model(), suite.input(), reduction);
            for (Bug bug : bugs(name, batch)) {
                CheckReport report = check.run(Engines.precomputed(bug.name(), reduction, planted(correct, bug.plant())));
                assertDiagnosed(bug, report);
            }
        }
    }

    @Test
    void aSquareWeightTransposedIsNamed() {
        torch.manual_seed(3);
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("0", new LinearImpl(12, 12));
        seq.push_back("1", new ReLUImpl());
        seq.push_back("2", new LinearImpl(12, 3));
        try (PointerScope scope = new PointerScope(); Model model = Models.module(seq)) {
            Tensor x = torch.randn(8, 12);
            for (Reduction reduction : Reduction.values()) {
                try (PerSampleCheck check = check(model, x, reduction)) {
                    Map<String, Tensor> correct = correct(model, x, reduction);
                    Bug bug = new Bug("transpose 0.weight", (p, g) -> p.equals("0.weight") ? g.transpose(1, 2).contiguous() : g,
                            DiagnosisKind.TRANSPOSED, Set.copyOf(IntStream.range(0, 8).boxed().toList()),
                            "the reference's transposed:", Set.of("0.weight"));
                    assertDiagnosed(bug, check.run(Engines.precomputed(bug.name(), reduction, planted(correct, bug.plant()))));
                }
            }
        }
    }

    /** Random candidates, random noise added, random scaling per sample: failures, and no cause claimed. */
    @ParameterizedTest(name = "{0} / {1} / B = {2}")
    @MethodSource("setups")
    void randomMismatchesGetNoDiagnosis(String name, Reduction reduction, int batch) {
        try (PointerScope scope = new PointerScope(); Suite suite = Suite.build(name, batch);
             PerSampleCheck check = check(suite.model(), suite.input(), reduction)) {
            Map<String, Tensor> correct = correct(suite.model(), suite.input(), reduction);
            torch.manual_seed(batch * 31L + reduction.ordinal());
            Map<String, UnaryOperator<Tensor>> mismatches = new LinkedHashMap<>();
            mismatches.put("random", g -> torch.randn_like(g).mul(new Scalar(g.abs().mean().item_double() + 1e-3)));
            mismatches.put("noise", g -> g.add(torch.randn_like(g).mul(new Scalar(0.1 * g.abs().mean().item_double()
                    + 1e-3))));
            mismatches.put("per-sample scale", g -> g.mul(torch.rand(perSampleShape(g)).add(new Scalar(0.5))));
            for (Map.Entry<String, UnaryOperator<Tensor>> m : mismatches.entrySet()) {
                CheckReport report = check.run(Engines.precomputed(m.getKey(), reduction,
                        planted(correct, (p, g) -> m.getValue().apply(g))));
                assertFalse(report.passed(), m.getKey());
                assertTrue(report.diagnoses().isEmpty(), () -> m.getKey() + " got a diagnosis: " + report.diagnoses());
            }
        }
    }

    @Test
    void sketchModeGivesTheSameDiagnosis() {
        try (PointerScope scope = new PointerScope(); Suite suite = Suite.build("mlp", 8);
             PerSampleCheck exact = check(suite.model(), suite.input(), Reduction.MEAN);
             PerSampleCheck sketch = PerSampleCheck.builder().model(suite.model()).inputs(suite.input())
                     .reduction(Reduction.MEAN).mode(CheckMode.SKETCH).seed(5).build()) {
            Map<String, Tensor> correct = correct(suite.model(), suite.input(), Reduction.MEAN);
            Map<String, Tensor> unscaled = planted(correct, (p, g) -> p.equals("2.weight") ? g.div(new Scalar(8.0)) : g);
            CheckReport e = exact.run(Engines.precomputed("unscaled", Reduction.MEAN, unscaled));
            CheckReport s = sketch.run(Engines.precomputed("unscaled", Reduction.MEAN, unscaled));
            assertEquals(e.diagnoses(), s.diagnoses());
            assertEquals(1, s.diagnoses().size(), s::summary);
            assertEquals(DiagnosisKind.SCALED, s.diagnoses().get(0).kind());
            assertTrue(s.diagnoses().get(0).message().startsWith("mean / 2.weight: every sample's gradient is 1/B = 1/8"),
                    s.diagnoses().get(0)::message);
            assertTrue(s.toJson().contains("\"kind\" : \"scaled\""), s::toJson);
            assertEquals(s, CheckReport.fromJson(s.toJson()), "the kind reads back from JSON");
        }
    }

    private static void assertDiagnosed(Bug bug, CheckReport report) {
        assertFalse(report.passed(), bug.name());
        List<ParamReport> failing = report.reductions().get(0).params().stream().filter(p -> !p.passed()).toList();
        assertFalse(failing.isEmpty(), bug.name());
        assertEquals(failing.size(), report.diagnoses().size(), () -> bug.name() + ": one diagnosis per failing"
                + " parameter\n" + report.summary() + "\n" + report.diagnoses());
        for (ParamReport p : failing) {
            Diagnosis d = report.diagnoses().stream().filter(x -> x.param().equals(p.name())).findFirst()
                    .orElseThrow(() -> new AssertionError(bug.name() + ": no diagnosis for " + p.name() + "\n"
                            + report.diagnoses()));
            assertEquals(bug.kind(), d.kind(), () -> bug.name() + ": " + d.message());
            assertEquals(p.badSamples(), d.samples(), bug.name());
            assertTrue(bug.samples().containsAll(p.badSamples()), () -> bug.name() + ": " + p.badSamples());
            assertTrue(d.message().contains(bug.says()), () -> bug.name() + ": " + d.message());
            assertTrue(d.message().startsWith(report.reductions().get(0).reduction() + " / " + p.name() + ": "),
                    d::message);
            if (bug.params() != null) {
                assertTrue(bug.params().contains(p.name()), () -> bug.name() + " failed " + p.name());
            }
        }
        // The weight of the first layer differs per sample everywhere: every planted sample fails there.
        String first = bug.params() != null ? bug.params().iterator().next() : failing.get(0).name();
        assertEquals(bug.samples().stream().sorted().toList(), failing.stream().filter(p -> p.name().equals(first))
                .findFirst().orElseThrow().badSamples(), bug.name());
    }

    private static PerSampleCheck check(Model model, Tensor x, Reduction reduction) {
        return PerSampleCheck.builder().model(model).inputs(x).reduction(reduction).probes(false).build();
    }

    private static Map<String, Tensor> correct(Model model, Tensor x, Reduction reduction) {
        try (Batch batch = Batch.of(x)) {
            return Engines.microbatch().perSampleGradients(model, batch, Loss.L1, reduction);
        }
    }

    private static Map<String, Tensor> planted(Map<String, Tensor> correct, BiFunction<String, Tensor, Tensor> plant) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        correct.forEach((name, g) -> out.put(name, plant.apply(name, g)));
        return out;
    }

    private static Tensor order(int b, java.util.function.IntUnaryOperator source) {
        return torch.tensor(IntStream.range(0, b).mapToLong(i -> source.applyAsInt(i)).toArray());
    }

    /** Each sample's [m, c] gradient transposed to [c, m], then laid out as [m, c] again. */
    private static Tensor transposed(Tensor g) {
        return g.transpose(1, 2).contiguous().reshape(g.sizes().vec().get());
    }

    private static Tensor zeroed(Tensor g, int... samples) {
        Tensor out = g.clone();
        for (int i : samples) {
            out.select(0, i).zero_();
        }
        return out;
    }

    private static long[] perSampleShape(Tensor g) {
        long[] shape = new long[(int) g.dim()];
        java.util.Arrays.fill(shape, 1);
        shape[0] = g.size(0);
        return shape;
    }
}
