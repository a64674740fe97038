package dev.psg4j.cli;

import dev.psg4j.Fixtures;
import dev.psg4j.report.DiagnosisKind;
import dev.psg4j.report.ProbeReport;

import org.bytedeco.pytorch.JitModule;
import org.bytedeco.pytorch.QualifiedName;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

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
        assertEquals(DiagnosisKind.BATCH_MIXING, report.diagnoses().get(0).kind());
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

    /**
     * A TorchScript module (built here through TorchScript's own compiler) whose sample 1's output
     * gets sample 4's features: mixing confined to one pair, which a probe of the first, the last and
     * a middle sample never saw.
     */
    private static Path pairLeakModel(Path dir) {
        torch.manual_seed(14);
        JitModule module = new JitModule(new QualifiedName("PairLeak"));
        module.register_parameter("weight", torch.randn(3, 6).requires_grad_(true), false);
        module.define("""
                def forward(self, x):
                    h = torch.matmul(x, self.weight.t())
                    leak = torch.zeros_like(h)
                    if h.size(0) == 6:
                        leak[1] = h[4]
                    return h + leak
                """);
        Path file = dir.resolve("pair_leak.pt");
        module.save(file.toString());
        return file;
    }

    @Test
    void sampleOneDependingOnSampleFourAtBatchSixFailsProbeAndCheck(@TempDir Path dir) throws IOException {
        String model = pairLeakModel(dir).toString();
        String input = Fixtures.PROBES.file("batchnorm_train", "x.pt").toString();  // [6, 6]
        Path json = dir.resolve("probe.json");
        CliRun probe = CliRun.of("probe", "--model", model, "--input", input, "--json", json.toString());
        assertEquals(1, probe.status(), probe::toString);
        assertTrue(probe.out().contains("sample 1 <- samples [4]") && probe.out().contains("affected samples: [1]"),
                probe::toString);
        ProbeReport report = ProbeReport.fromJson(Files.readString(json));
        assertEquals(Map.of(1, List.of(4)), report.leaks());
        assertEquals(List.of(4), report.sourceSamples());
        CliRun check = CliRun.of("check", "--model", model, "--input", input);
        assertEquals(1, check.status(), check::toString);
        assertTrue(check.out().contains("sample 1's output depends on sample 4"), check::toString);
    }

    @Test
    void checkTakesProbeSamplesBoundedBeforeRunning() {
        String model = Fixtures.PROBES.file("subtract_batch_mean", "model.pt").toString();
        String input = Fixtures.PROBES.file("subtract_batch_mean", "x.pt").toString();
        CliRun one = CliRun.of("check", "--model", model, "--input", input, "--probe-samples", "1");
        assertEquals(1, one.status(), one::toString);
        assertTrue(one.out().contains("sample 0's output depends on samples 1, 2, 3, 4")
                && !one.out().contains("sample 4's output depends"), one::toString);
        for (String bad : List.of("0", "1025")) {
            CliRun refused = CliRun.of("check", "--model", model, "--input", input, "--probe-samples", bad);
            assertEquals(2, refused.status(), refused::toString);
            assertEquals(1, refused.errLines().size(), refused::toString);
            assertTrue(refused.errLines().get(0).contains("--probe-samples must be between 1 and 1024"), refused::toString);
        }
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
