package dev.psg4j.engine;

import dev.psg4j.check.Batch;
import dev.psg4j.check.Probes;
import dev.psg4j.conform.Configuration;
import dev.psg4j.conform.ConvSpec;
import dev.psg4j.conform.Problem;
import dev.psg4j.conform.RecurrentSpec;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.ProbeReport;

import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Zero false alarms of the exhaustive probes on the models built in Java: every case of
 * {@link FrontendVmapMatrixTest} (after Opacus's grad-sample tests), and random configurations
 * of the property tests' layers at larger batches, where a batched kernel and a one-sample one
 * round differently most often.
 */
class JavaBuiltProbeTest {
    static Stream<Configuration> matrixCases() {
        return FrontendVmapMatrixTest.cases();
    }

    private static ProbeReport probe(Problem problem) {
        try (Model model = Models.module(problem.module());
             Batch batch = new Batch(problem.inputs(), List.of(), problem.batchDim(), problem.batchDim())) {
            return Probes.report(model, batch, Probes.DEFAULT_PROBE_SAMPLES);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("matrixCases")
    void noModelOfTheJavaBuiltMatrixIsFlagged(Configuration c) {
        torch.manual_seed(c.name().hashCode());
        ProbeReport report = probe(c.problem(3));
        assertTrue(report.passed() && report.diagnoses().isEmpty(), report::toJson);
    }

    /** A property-test configuration, its batch and seed, named for the failure message. */
    record PropertyCase(String name, long seed, java.util.function.Supplier<Problem> problem) {
        @Override
        public String toString() {
            return name + ", torch seed " + seed;
        }
    }

    static Stream<PropertyCase> propertyCases() {
        Random random = new Random(2026);
        List<PropertyCase> cases = new ArrayList<>();
        for (int k = 0; k < 12; k++) {
            int dims = 1 + random.nextInt(2);
            long groups = 1 + random.nextInt(3);
            ConvSpec spec = new ConvSpec(dims, false, groups * (1 + random.nextInt(2)), groups * (1 + random.nextInt(3)),
                    1 + random.nextInt(3), 1 + random.nextInt(2), "1", 1 + random.nextInt(2), groups, random.nextBoolean(), 0);
            long batch = 6 + random.nextInt(27);
            long extent = spec.minimalInput(random.nextInt(4));
            cases.add(new PropertyCase(spec + " on " + extent + ", B=" + batch, k, () -> spec.problem(batch, extent)));
        }
        String[] kinds = {"RNN", "LSTM", "GRU"};
        for (int k = 0; k < 6; k++) {
            RecurrentSpec spec = new RecurrentSpec(kinds[k % 3], 2 + random.nextInt(3), 2 + random.nextInt(4),
                    1 + random.nextInt(2), random.nextBoolean(), random.nextBoolean(), true);
            long batch = 6 + random.nextInt(27);
            long length = 2 + random.nextInt(4);
            cases.add(new PropertyCase(spec + ", B=" + batch + ", T=" + length, 100 + k, () -> spec.problem(batch, length)));
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("propertyCases")
    void noRandomLayerConfigurationIsFlagged(PropertyCase c) {
        torch.manual_seed(c.seed());
        ProbeReport report = probe(c.problem().get());
        assertTrue(report.passed() && report.diagnoses().isEmpty(), () -> c + ": " + report.toJson());
    }
}
