package dev.psg4j.cli;

import dev.psg4j.Fixtures;
import dev.psg4j.report.ProbeReport;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code psg4j probe}: exit 0 for a clean model, 1 for mixing or randomness, 2 for bad input; JSON. */
class CliProbeTest {
    private static CliRun probe(String fixture, String... more) {
        String[] args = new String[4 + more.length];
        args[0] = "probe";
        args[1] = "--model=" + Fixtures.PROBES.file(fixture, "model.pt");
        args[2] = "--input=" + Fixtures.PROBES.file(fixture, "x.pt");
        args[3] = "--batch-dim=" + Fixtures.PROBES.entry(fixture).get("batch_dim").asInt();
        System.arraycopy(more, 0, args, 4, more.length);
        return CliRun.of(args);
    }

    @Test
    void cleanModelExitsZero() {
        CliRun run = probe("time_first_lstm");
        assertEquals(0, run.status(), run::toString);
        assertTrue(run.out().startsWith("PASSED") && run.out().contains("batch-independent: yes"), run::toString);
    }

    @Test
    void mixingModelExitsOneNamingSamplesAndSubmodule(@TempDir Path dir) throws IOException {
        Path json = dir.resolve("probe.json");
        CliRun run = probe("batchnorm_train", "--json", json.toString());
        assertEquals(1, run.status(), run::toString);
        assertTrue(run.out().contains("sample 0 <- samples [1, 2, 3, 4, 5]"), run::toString);
        assertTrue(run.out().contains("mixing starts in submodule: 1"), run::toString);
        ProbeReport report = ProbeReport.fromJson(Files.readString(json));
        assertFalse(report.batchIndependent());
        assertEquals("1", report.mixingModule());
        assertEquals("batch_mixing", report.diagnoses().get(0).kind());
    }

    @Test
    void dropoutInTrainModeIsNonDeterministic() {
        CliRun run = probe("dropout_train");
        assertEquals(1, run.status(), run::toString);
        assertTrue(run.out().contains("non-deterministic forward: ") && run.out().contains("eval mode"), run::toString);
    }

    @Test
    void checkRefusesAMixingModel() {
        CliRun run = CliRun.of("check", "--model", Fixtures.PROBES.file("cumsum_over_batch", "model.pt").toString(),
                "--input", Fixtures.PROBES.file("cumsum_over_batch", "x.pt").toString());
        assertEquals(1, run.status(), run::toString);
        assertTrue(run.out().contains("* batch mixing: ") && run.out().contains("sample 4's output depends on samples 0, 1, 2, 3"),
                run::toString);
    }

    @Test
    void badInputExitsTwoWithOneLine() {
        CliRun run = probe("mlp", "--probe-samples", "0");
        assertEquals(2, run.status(), run::toString);
        assertEquals(1, run.errLines().size(), run::toString);
        assertTrue(run.errLines().get(0).startsWith("psg4j probe: --probe-samples"), run::toString);
        CliRun missing = CliRun.of("probe", "--model", "no_such.pt", "--input", "x.pt");
        assertEquals(2, missing.status(), missing::toString);
        assertTrue(missing.errLines().get(0).contains("does not exist"), missing::toString);
    }
}
