package dev.psg4j.cli;

import dev.psg4j.Fixtures;
import dev.psg4j.engine.PluginJars;
import dev.psg4j.report.ConformanceReport;
import dev.psg4j.report.ConformanceRow;
import dev.psg4j.report.ConformanceVerdict;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code psg4j conform}: the table, JSON and HTML, exit 0 / 1 / 2, a plug-in jar conformance-tested with one command. */
class CliConformTest {
    @TempDir
    static Path dir;
    static Path jar;

    @BeforeAll
    static void buildPlugin() {
        jar = PluginJars.build("hooks-linear", dir);
    }

    private static ConformanceReport read(Path json) throws Exception {
        return ConformanceReport.fromJson(Files.readString(json));
    }

    @Test
    void theExamplePluginPassesItsLinearRowsAndSkipsTheRest() throws Exception {
        Path json = dir.resolve("plugin.json");
        CliRun run = CliRun.asMain("conform", "--engine", "example-hooks-linear", "--plugin", jar.toString(),
                "--json", json.toString());
        assertEquals(0, run.status(), run.all());
        assertTrue(run.out().contains("CONFORMS: engine example-hooks-linear"), run.out());
        ConformanceReport report = read(json);
        System.out.printf(Locale.ROOT, "conformance example-hooks-linear: %d rows (%d ran), %.1f s%n",
                report.totals().rows(), report.totals().ran(), report.seconds());
        Set<String> passed = report.rows(ConformanceVerdict.PASSED).stream().map(ConformanceRow::configuration)
                .collect(Collectors.toSet());
        assertTrue(passed.contains("Linear(5->3) time-first on [T=4, B, 5], batch dim 1"), passed::toString);
        assertTrue(passed.stream().allMatch(n -> n.contains("Linear")), passed::toString);
        assertTrue(report.rows(ConformanceVerdict.PASSED).stream().allMatch(r -> r.layerKinds().contains("Linear")));
        assertTrue(report.totals().skipped() > report.totals().passed(), report::summary);
        assertEquals(0, report.totals().failed() + report.totals().error(), report::summary);
    }

    @Test
    void aBrokenDemoSamplerIsExitOneWithTheFailedRowsNamedAndJsonAndHtmlWritten() throws Exception {
        Path json = dir.resolve("broken.json");
        Path html = dir.resolve("broken.html");
        CliRun run = CliRun.asMain("conform", "--engine", "demo-linear-batch-first", "--batch", "3", "--only", "^Linear",
                "--json", json.toString(), "--html", html.toString());
        assertEquals(1, run.status(), run.all());
        assertTrue(run.out().contains("DOES NOT CONFORM"), run.out());
        assertTrue(run.out().contains("FAILED Linear(5->3) time-first on [T=4, B, 5], batch dim 1, sum, B=3"), run.out());
        assertTrue(run.out().lines().anyMatch(l -> l.strip().startsWith("Linear(5->3) on [B, 5]") && l.contains(" ok ")),
                run.out());
        ConformanceReport report = read(json);
        assertEquals(List.of(3L), report.batchSizes());
        assertEquals(2, report.rows(ConformanceVerdict.FAILED).size(), report::summary);
        assertTrue(report.rows(ConformanceVerdict.FAILED).stream().allMatch(r -> r.failureKind() != null));
        String page = Files.readString(html);
        assertTrue(page.contains("<table id=\"conformance\">") && page.contains("DOES NOT CONFORM")
                && page.contains("time-first"), "html");
    }

    @Test
    void vmapOnAFewRowsIsExitZeroAndTheTorchScriptMatrixRunsWhenAsked() throws Exception {
        Path json = dir.resolve("vmap.json");
        Path layerMatrix = Fixtures.LAYER_MATRIX.root();
        CliRun run = CliRun.asMain("conform", "--engine", "vmap", "--reduction", "sum", "--batch", "2",
                "--only", "^Embedding\\(|torchscript/(linear|conv2d_basic)", "--torchscript", layerMatrix.toString(),
                "--json", json.toString(), "--quiet");
        assertEquals(0, run.status(), run.all());
        ConformanceReport report = read(json);
        assertTrue(report.rows().stream().anyMatch(r -> r.configuration().startsWith("torchscript/")), report::summary);
        assertTrue(report.rows().stream().anyMatch(r -> r.configuration().startsWith("Embedding(")), report::summary);
        assertEquals(report.totals().rows(), report.totals().passed(), report::summary);
        assertFalse(run.out().contains("configuration  "), "--quiet prints no table");
    }

    @Test
    void badInputIsExitTwoWithOneLine() {
        List<List<String>> bad = List.of(
                List.of("--batch", "0"),
                List.of("--batch", "3,,8"),
                List.of("--batch", "1000"),
                List.of("--reduction", "median"),
                List.of("--only", "["),
                List.of("--only", "no such configuration"),
                List.of("--engine", "nope"),
                List.of("--plugin", dir.resolve("absent.jar").toString()),
                List.of("--torchscript", dir.toString()));
        for (List<String> extra : bad) {
            String[] args = java.util.stream.Stream.concat(java.util.stream.Stream.of("conform"), extra.stream())
                    .toArray(String[]::new);
            CliRun run = CliRun.asMain(args);
            assertEquals(2, run.status(), extra + ": " + run.all());
            assertEquals(1, run.errLines().size(), extra + ": " + run.err());
        }
    }

    @Test
    void aPluginJarThatIsNotAJarIsExitTwoWithOneLine() throws Exception {
        Path notAJar = Files.writeString(dir.resolve("broken.jar"), "not a zip");
        CliRun run = CliRun.asMain("conform", "--engine", "example-hooks-linear", "--plugin", notAJar.toString());
        assertEquals(2, run.status(), run.all());
        assertEquals(1, run.errLines().size(), run.err());
        assertTrue(run.err().contains("broken.jar"), run.err());
    }
}
