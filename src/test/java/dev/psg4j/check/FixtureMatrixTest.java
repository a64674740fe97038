package dev.psg4j.check;

import dev.psg4j.junit.PerSampleAssertions;
import com.fasterxml.jackson.databind.JsonNode;

import dev.psg4j.Fixtures;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.Failure;
import dev.psg4j.report.FailureKind;
import dev.psg4j.report.ParamReport;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every candidate Python computed for the fixtures (torch.func, Opacus, planted bugs) gets the
 * verdict the manifest expects, and failures name the planted parameter, samples and kind.
 */
class FixtureMatrixTest {
    static Stream<Arguments> candidates() {
        List<Arguments> out = new ArrayList<>();
        for (String fixture : Fixtures.names()) {
            Fixtures.entry(fixture).get("candidates").fields()
                    .forEachRemaining(c -> out.add(Arguments.of(fixture, c.getKey())));
        }
        return out.stream();
    }

    static PerSampleCheck.Builder checkOf(String fixture, Model model) {
        JsonNode entry = Fixtures.entry(fixture);
        return PerSampleCheck.builder().model(model).inputs(Fixtures.inputs(fixture))
                .targets(Fixtures.targets(fixture)).batchDim(entry.get("batch_dim").asInt())
                .loss(Loss.named(entry.get("loss").asText()));
    }

    @ParameterizedTest(name = "{0} / {1}")
    @MethodSource("candidates")
    void verdictMatchesManifest(String fixture, String candidateFile) {
        JsonNode expected = Fixtures.entry(fixture).get("candidates").get(candidateFile);
        Reduction reduction = Reduction.valueOf(expected.get("reduction").asText().toUpperCase(Locale.ROOT));
        try (Model model = Models.torchScript(Fixtures.file(fixture, "model.pt"));
             PerSampleCheck check = checkOf(fixture, model).reduction(reduction).build()) {
            CheckReport report = check.run(Engines.precomputed(candidateFile, reduction,
                    Fixtures.grads(fixture, candidateFile)));
            if (expected.get("expect_pass").asBoolean()) {
                PerSampleAssertions.assertCorrect(report);
                return;
            }
            assertFalse(report.passed(), report::table);
            String param = expected.get("bug_param").asText();
            FailureKind kind = FailureKind.valueOf(expected.get("kind").asText().toUpperCase(Locale.ROOT));
            List<Failure> named = report.failures().stream().filter(f -> f.param().equals(param)).toList();
            assertFalse(named.isEmpty(), () -> "no failure names " + param + "\n" + report.summary());
            assertTrue(named.stream().allMatch(f -> f.kind() == kind), () -> "expected kind " + kind + ": " + named);
            JsonNode samples = expected.get("bug_samples");
            if (samples != null && !samples.isNull()) {
                List<Integer> want = new ArrayList<>();
                samples.forEach(s -> want.add(s.asInt()));
                ParamReport p = report.reductions().get(0).params().stream()
                        .filter(r -> r.name().equals(param)).findFirst().orElseThrow();
                assertEquals(want, p.badSamples(), report::table);
                assertEquals(want, named.stream().map(Failure::sample).toList());
                assertTrue(want.contains(p.worstSample()));
            }
        }
    }
}
