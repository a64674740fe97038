package dev.psg4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code psg4j bench} in this JVM (--forks 0) with the shortest JMH settings: the table, the JSON, bad options. */
class CliBenchTest {
    private static final List<String> METHODS = List.of("vmap", "microbatch", "check", "backward", "probe");
    private static final List<String> RATIOS = List.of("vmap/backward", "microbatch/vmap", "check/vmap", "probe/backward");

    @BeforeAll
    static void shareTheJmhLock() {
        // timings don't matter here: run even if another JMH holds its lock (a benchmark elsewhere on the machine)
        System.setProperty("jmh.ignoreLock", "true");
    }

    private static List<String> tiny(String... more) {
        List<String> args = new ArrayList<>(List.of("bench", "--batch", "2", "--forks", "0", "--warmups", "0",
                "--iterations", "1", "--iteration-time", "20"));
        args.addAll(Arrays.asList(more));
        return args;
    }

    /** The table's header cells and the cells of {@code suite}'s row. */
    private static List<List<String>> table(CliRun run, String suite) {
        List<String> lines = run.out().lines().map(String::strip).toList();
        List<String> header = lines.stream().filter(l -> l.startsWith("suite ")).findFirst()
                .map(l -> List.of(l.split("\\s+"))).orElseThrow(() -> new AssertionError("no table header\n" + run));
        List<String> row = lines.stream().filter(l -> l.startsWith(suite + " ")).findFirst()
                .map(l -> List.of(l.split("\\s+"))).orElseThrow(() -> new AssertionError("no row " + suite + "\n" + run));
        assertEquals(header.size(), row.size(), run::toString);
        return List.of(header, row);
    }

    @Test
    void tinyRunPrintsEveryMethodWithAPositiveMedianAndWritesTheJson(@TempDir Path dir) throws IOException {
        Path json = dir.resolve("bench.json");
        CliRun run = CliRun.asMain(tiny("--suite", "seq", "--json", json.toString()).toArray(String[]::new));
        assertEquals(0, run.status(), run::toString);
        assertEquals("", run.err(), run::toString);
        assertTrue(run.out().startsWith("bench: B = 2, threads 1, device cpu, models built in Java"), run::toString);

        List<List<String>> table = table(run, "seq");
        List<String> header = table.get(0);
        List<String> row = table.get(1);
        List<String> expected = new ArrayList<>(List.of("suite"));
        expected.addAll(METHODS);
        expected.addAll(RATIOS);
        assertEquals(expected, header, run::toString);
        for (int c = 1; c <= METHODS.size(); c++) {
            assertTrue(Double.parseDouble(row.get(c)) > 0, () -> "median not positive\n" + run);
        }
        for (int c = METHODS.size() + 1; c < header.size(); c++) {
            String cell = row.get(c);
            assertTrue(cell.endsWith("x") && Double.parseDouble(cell.substring(0, cell.length() - 1)) > 0,
                    () -> "bad ratio " + cell + "\n" + run);
        }

        JsonNode root = new ObjectMapper().readTree(json.toFile());
        assertEquals(2, root.get("batch").asInt());
        assertEquals(1, root.get("threads").asInt());
        assertEquals("cpu", root.get("device").asText());
        assertEquals("java", root.get("models").asText());
        assertEquals(0, root.get("jmh").get("forks").asInt());
        JsonNode seq = root.get("suites").get("seq");
        for (String method : METHODS) {
            assertTrue(seq.get("median_ms").get(method).asDouble() > 0, root::toPrettyString);
            assertTrue(seq.get("samples").get(method).asLong() >= 1, root::toPrettyString);
        }
        for (String ratio : RATIOS) {
            assertTrue(seq.get("ratios").get(ratio).asDouble() > 0, root::toPrettyString);
        }
        double vmap = seq.get("median_ms").get("vmap").asDouble();
        double backward = seq.get("median_ms").get("backward").asDouble();
        assertEquals(vmap / backward, seq.get("ratios").get("vmap/backward").asDouble(), 1e-9);
        assertEquals(1, root.get("suites").size());
    }

    @Test
    void someMethodsOnlyGetTheirColumnsAndRatios() {
        CliRun run = CliRun.asMain(tiny("--suite", "mlp", "--methods", "backward,vmap").toArray(String[]::new));
        assertEquals(0, run.status(), run::toString);
        assertEquals(List.of("suite", "vmap", "backward", "vmap/backward"), table(run, "mlp").get(0), run::toString);
    }

    @ParameterizedTest
    @ValueSource(strings = {"--suite=nope", "--methods=vmap,nope", "--batch=x", "--batch=0", "--threads=0",
            "--forks=-1", "--iterations=0", "--models=/no/such/folder", "--json=/no/such/folder/b.json", "--frobnicate"})
    void aBadOptionExitsTwoWithOneLine(String option) {
        CliRun run = CliRun.asMain("bench", option);
        assertEquals(2, run.status(), run::toString);
        assertEquals(1, run.errLines().size(), run::toString);
        assertTrue(run.errLines().get(0).startsWith("psg4j bench: "), run::toString);
        assertEquals("", run.out(), run::toString);
    }

    @Test
    void aModelsFolderWithoutTheExportSaysHowToMakeIt(@TempDir Path dir) {
        CliRun run = CliRun.of("bench", "--models", dir.toString(), "--suite", "cnn");
        assertEquals(2, run.status(), run::toString);
        assertEquals(1, run.errLines().size(), run::toString);
        assertTrue(run.err().contains("cnn.pt does not exist") && run.err().contains("bench_python.py --export"),
                run::toString);
    }
}
