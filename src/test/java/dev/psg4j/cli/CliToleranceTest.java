package dev.psg4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.psg4j.Fixtures;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code check --tolerance rounding|allclose}: the rule the summary line and the report name. */
class CliToleranceTest {

    private static CliRun check(Path json, String... more) {
        List<String> args = CliRun.candidateArgs("mlp", "bug_swapped.pt");
        args.addAll(List.of("--json", json.toString()));
        args.addAll(List.of(more));
        return CliRun.of(args.toArray(String[]::new));
    }

    @Test
    void theRoundingRuleIsTheDefaultAndAllcloseIsAnOption(@TempDir Path dir) throws IOException {
        Path json = dir.resolve("report.json");
        CliRun rounding = check(json);
        assertEquals(1, rounding.status(), rounding::toString);
        assertTrue(rounding.out().lines().findFirst().orElse("")
                .contains(", tolerance rounding (+ 4 x float rounding level), device cpu"), rounding::toString);
        JsonNode report = new ObjectMapper().readTree(json.toFile());
        assertEquals(3, report.get("schema_version").asInt());
        assertEquals("rounding", report.get("tolerance").asText());
        assertEquals("float", report.get("reference_precision").asText());
        assertEquals("double", report.get("rounding").get("measured_against").asText());
        assertTrue(report.get("reductions").get(0).get("params").get(0).get("rounding_level").asDouble() > 0);

        CliRun allclose = check(json, "--tolerance", "allclose");
        assertEquals(1, allclose.status(), allclose::toString);
        assertTrue(allclose.out().lines().findFirst().orElse("").contains(", tolerance allclose, device cpu"),
                allclose::toString);
        JsonNode exact = new ObjectMapper().readTree(json.toFile());
        assertEquals("allclose", exact.get("tolerance").asText());
        // The same planted bug fails either way, in the same samples.
        assertEquals(report.get("reductions").get(0).get("params").get(2).get("bad_samples"),
                exact.get("reductions").get(0).get("params").get(2).get("bad_samples"));
    }

    @Test
    void anUnknownRuleIsOneLine(@TempDir Path dir) {
        CliRun run = check(dir.resolve("r.json"), "--tolerance", "exact");
        assertEquals(2, run.status(), run::toString);
        assertEquals(List.of("psg4j check: unknown tolerance rule 'exact': use rounding (the default: allclose widened "
                + "by the measured float rounding) or allclose (torch.allclose, as Opacus)"), run.errLines());
    }

    @Test
    void normsAndClippedSumsRefuseTheRule() {
        List<String> args = new ArrayList<>(CliRun.checkArgs("mlp"));
        args.addAll(List.of("--candidate-norms", Fixtures.file("mlp", "grads_func_sum.pt").toString(),
                "--reduction", "sum", "--tolerance", "allclose"));
        CliRun run = CliRun.of(args.toArray(String[]::new));
        assertEquals(2, run.status(), run::toString);
        assertEquals(List.of("psg4j check: --tolerance applies to per-sample gradients; --candidate-norms has its own "
                + "criterion (see the README): drop --tolerance"), run.errLines());
    }
}
