package dev.psg4j.cli;

import dev.psg4j.FixtureSet;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code check --candidate-norms} and {@code --candidate-clipped-sum} on the Opacus exports of
 * make_opacus_fixtures.py, as the README's recipes run them: the exports pass (exit 0), a planted
 * bug fails (exit 1) with its diagnosis in the JSON report, and bad usage is one line, exit 2.
 */
class CliNormsTest {
    private static final FixtureSet OPACUS = FixtureSet.of("/fixtures/opacus");

    private static List<String> base(String fixture, String reduction) {
        JsonNode e = OPACUS.entry(fixture);
        List<String> args = new ArrayList<>(List.of("check", "--model", OPACUS.file(fixture, "model.pt").toString(),
                "--input", OPACUS.file(fixture, "x.pt").toString(), "--loss", e.get("loss").asText(),
                "--reduction", reduction));
        if (e.hasNonNull("target")) {
            args.addAll(List.of("--target", OPACUS.file(fixture, e.get("target").asText()).toString()));
        }
        return args;
    }

    private static String c(String fixture, String reduction) {
        return OPACUS.entry(fixture).get("reductions").get(reduction).get("max_grad_norm").asText();
    }

    private static CliRun run(List<String> args, String... more) {
        List<String> all = new ArrayList<>(args);
        all.addAll(List.of(more));
        return CliRun.of(all.toArray(String[]::new));
    }

    static Stream<Arguments> exports() {
        List<Arguments> out = new ArrayList<>();
        for (String fixture : OPACUS.names()) {
            for (String r : List.of("sum", "mean")) {
                String cc = c(fixture, r);
                out.add(Arguments.of(fixture, r, List.of("--candidate-norms", "ghost_norms_" + r + ".pt")));
                out.add(Arguments.of(fixture, r, List.of("--candidate-norms", "ghost_param_norms_" + r + ".pt")));
                out.add(Arguments.of(fixture, r, List.of("--candidate-clipped-sum", "summed_flat_" + r + ".pt",
                        "--max-grad-norm", cc)));
                out.add(Arguments.of(fixture, r, List.of("--candidate-clipped-sum", "summed_per_layer_" + r + ".pt",
                        "--max-grad-norm", cc, "--clipping", "per-layer")));
                out.add(Arguments.of(fixture, r, List.of("--candidate", "grads_" + r + ".pt")));
            }
        }
        return out.stream();
    }

    /** The README's three Opacus recipes, one command each: exit 0, nothing on stderr. */
    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("exports")
    void opacusExportsPass(String fixture, String reduction, List<String> option) {
        List<String> args = new ArrayList<>(option);
        args.set(1, OPACUS.file(fixture, option.get(1)).toString());
        CliRun run = run(base(fixture, reduction), args.toArray(String[]::new));
        assertEquals(0, run.status(), run::toString);
        assertTrue(run.out().startsWith("PASSED"), run::toString);
        assertEquals("", run.err(), run::toString);
    }

    @Test
    void aPlantedBugFailsWithItsDiagnosisInTheJsonReport(@TempDir Path dir) throws IOException {
        Path json = dir.resolve("r.json");
        CliRun run = run(base("mlp", "mean"), "--candidate-clipped-sum", OPACUS.file("mlp", "bug_not_floored_mean.pt")
                .toString(), "--max-grad-norm", c("mlp", "mean"), "--json", json.toString());
        assertEquals(1, run.status(), run::toString);
        JsonNode report = new ObjectMapper().readTree(json.toFile());
        assertEquals("clipped_sum", report.get("candidate").asText());
        assertEquals("flat", report.get("clipping").get("mode").asText());
        assertEquals("clipping_not_floored", report.get("diagnoses").get(0).get("kind").asText(), report::toString);
        assertTrue(run.out().contains("not floored"), run::toString);

        CliRun norms = run(base("mlp", "sum"), "--candidate-norms", OPACUS.file("mlp", "bug_norms_squared_sum.pt")
                .toString(), "--json", json.toString());
        assertEquals(1, norms.status(), norms::toString);
        JsonNode n = new ObjectMapper().readTree(json.toFile());
        assertEquals("norms", n.get("candidate").asText());
        assertEquals("norms_squared", n.get("diagnoses").get(0).get("kind").asText(), n::toString);
    }

    @Test
    void aNaNNormFailsAsNonFinite() {
        CliRun run = run(base("mlp", "sum"), "--candidate-norms",
                OPACUS.file("mlp", "bad_norms_nan_sum.pt").toString());
        assertEquals(1, run.status(), run::toString);
        assertTrue(run.out().contains("sample 1"), run::toString);
    }

    static Stream<Arguments> badUsage() {
        String norms = OPACUS.file("mlp", "norms_sum.pt").toString();
        String sum = OPACUS.file("mlp", "summed_flat_sum.pt").toString();
        String grads = OPACUS.file("mlp", "grads_sum.pt").toString();
        return Stream.of(
                Arguments.of(List.of("--candidate-norms", norms, "--reduction", "both"), "--reduction sum"),
                Arguments.of(List.of("--candidate-norms", norms, "--candidate", grads), "give one of"),
                Arguments.of(List.of("--candidate-clipped-sum", sum), "needs --max-grad-norm"),
                Arguments.of(List.of("--candidate-clipped-sum", sum, "--max-grad-norm", "0"), "> 0"),
                Arguments.of(List.of("--candidate-clipped-sum", sum, "--max-grad-norm", "-1"), "> 0"),
                Arguments.of(List.of("--candidate-clipped-sum", sum, "--max-grad-norm", "nan"), "> 0"),
                Arguments.of(List.of("--candidate-clipped-sum", sum, "--max-grad-norm", "abc"), "not a number"),
                Arguments.of(List.of("--candidate-clipped-sum", sum, "--max-grad-norm", "1,2"), "--clipping per-layer"),
                Arguments.of(List.of("--candidate-clipped-sum", sum, "--max-grad-norm", "1,2", "--clipping",
                        "per-layer"), "4 here"),
                Arguments.of(List.of("--candidate-clipped-sum", sum, "--max-grad-norm", "1", "--clipping", "layers"),
                        "unknown clipping"),
                Arguments.of(List.of("--candidate-norms", norms, "--max-grad-norm", "1"), "applies to"),
                Arguments.of(List.of("--candidate-norms", norms, "--mode", "sketch"), "exactly"),
                Arguments.of(List.of("--candidate-norms", OPACUS.file("mlp", "bad_norms_too_long_sum.pt").toString()),
                        "[7]"),
                Arguments.of(List.of("--candidate-norms", sum), "per-sample norms are [B]"),
                Arguments.of(List.of("--candidate-clipped-sum", norms, "--max-grad-norm", "1"), "not a dict"),
                Arguments.of(List.of("--candidate-clipped-sum", grads, "--max-grad-norm", "1"),
                        "looks like per-sample gradients"),
                Arguments.of(List.of("--candidate-clipped-sum", OPACUS.file("mlp", "bad_sum_missing_sum.pt").toString(),
                        "--max-grad-norm", "1"), "no entry for trainable parameter"),
                Arguments.of(List.of("--candidate-clipped-sum", OPACUS.file("mlp", "bad_sum_extra_sum.pt").toString(),
                        "--max-grad-norm", "1"), "frozen.weight"));
    }

    /** Every bad use is exit 2 and one line on stderr naming the cause. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("badUsage")
    void badUsageIsOneLineExitTwo(List<String> options, String mentions) {
        List<String> args = base("mlp", "sum");
        if (options.contains("--reduction")) {
            args = new ArrayList<>(args.subList(0, args.indexOf("--reduction")));
            args.addAll(base("mlp", "sum").subList(args.size() + 2, base("mlp", "sum").size()));
        }
        CliRun run = run(args, options.toArray(String[]::new));
        assertEquals(2, run.status(), run::toString);
        assertEquals(1, run.errLines().size(), run::toString);
        assertTrue(run.err().contains(mentions), run::toString);
    }
}
