package dev.psg4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.psg4j.Fixtures;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code check --mode sketch}: exact mode's exit status on every fixture candidate, a sketch report, bad options refused. */
class CliSketchTest {
    static Stream<String[]> candidates() {
        List<String[]> out = new ArrayList<>();
        for (String fixture : Fixtures.names()) {
            Fixtures.entry(fixture).get("candidates").fieldNames().forEachRemaining(c -> out.add(new String[] {fixture, c}));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0}/{1}")
    @MethodSource("candidates")
    void sketchGivesTheExactExitStatus(String fixture, String candidate) {
        List<String> args = CliRun.candidateArgs(fixture, candidate);
        CliRun exact = CliRun.of(args.toArray(String[]::new));
        args.addAll(List.of("--mode", "sketch", "--seed", "5"));
        CliRun sketch = CliRun.of(args.toArray(String[]::new));
        assertEquals(exact.status(), sketch.status(), sketch::toString);
        assertTrue(sketch.out().contains("mode sketch (2 projections, seed 5"), sketch::toString);
    }

    @Test
    void theJsonRecordsModeSeedAndZones(@TempDir Path dir) throws IOException {
        String fixture = Fixtures.names().get(0);
        Path json = dir.resolve("r.json");
        List<String> args = CliRun.checkArgs(fixture);
        args.addAll(List.of("--mode", "sketch", "--projections", "3", "--seed", "42", "--json", json.toString()));
        CliRun run = CliRun.of(args.toArray(String[]::new));
        JsonNode report = new ObjectMapper().readTree(json.toFile());
        assertEquals(3, report.get("schema_version").asInt(), run::toString);
        assertEquals("sketch", report.get("mode").asText());
        assertEquals(42, report.get("sketch").get("seed").asLong());
        assertEquals(3, report.get("sketch").get("projections").asInt());
        assertEquals("double", report.get("sketch").get("precision").asText());
        JsonNode param = report.get("reductions").get(0).get("params").get(0);
        assertTrue(param.has("sketch_zone") && param.has("sketch_residual_ratio"), param::toString);
    }

    /** --sketch-precision float-first: the report says what was asked and which precision decided. */
    @Test
    void floatFirstIsRecordedWithThePrecisionThatDecided(@TempDir Path dir) throws IOException {
        Path json = dir.resolve("r.json");
        List<String> args = CliRun.checkArgs(Fixtures.names().get(0));
        args.addAll(List.of("--mode", "sketch", "--sketch-precision", "float-first", "--json", json.toString()));
        CliRun run = CliRun.of(args.toArray(String[]::new));
        JsonNode sketch = new ObjectMapper().readTree(json.toFile()).get("sketch");
        assertEquals("float-first", sketch.get("precision").asText(), run::toString);
        String decided = sketch.get("reference_precision").asText();
        assertEquals(sketch.get("double_params").asLong() == 0 ? "float" : "float, then double", decided);
        assertTrue(run.out().contains("reference in " + decided), run::toString);
    }

    @Test
    void badSketchOptionsExitTwoWithOneLine() {
        String fixture = Fixtures.names().get(0);
        for (List<String> extra : List.of(List.of("--mode", "sketchy"), List.of("--mode", "sketch", "--no-probes"),
                List.of("--mode", "sketch", "--projections", "0"), List.of("--mode", "sketch", "--projections", "65"),
                List.of("--mode", "sketch", "--sketch-precision", "half"), List.of("--sketch-precision", "float-first"))) {
            List<String> args = CliRun.checkArgs(fixture);
            args.addAll(extra);
            CliRun run = CliRun.of(args.toArray(String[]::new));
            assertEquals(2, run.status(), () -> extra + "\n" + run);
            assertEquals(1, run.errLines().size(), () -> extra + "\n" + run);
        }
    }
}
