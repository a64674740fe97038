package dev.psg4j.cli;

import dev.psg4j.Fixtures;
import dev.psg4j.check.Devices;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code --device cuda} on check, probe, bench and conform: the CLI loads the model, the
 * batch and the candidate files onto the GPU. Runs only where bytedeco's GPU LibTorch sees a CUDA
 * device; elsewhere JUnit reports it skipped with the reason.
 */
@EnabledIf(value = "cudaVisible", disabledReason = "no CUDA device is visible (bytedeco's CPU natives are loaded, or "
        + "no GPU/driver): the CUDA variants run where psg4j's -Pgpu build sees a device")
class CliCudaTest {
    private static final String MODEL = Fixtures.file("mlp", "model.pt").toString();
    private static final String X = Fixtures.file("mlp", "x.pt").toString();
    private static final String Y = Fixtures.file("mlp", "y.pt").toString();

    @TempDir
    Path dir;

    static boolean cudaVisible() {
        return Devices.cudaVisible();
    }

    private static List<String> check(String... more) {
        List<String> args = new ArrayList<>(List.of("check", "--model", MODEL, "--input", X, "--target", Y,
                "--loss", "cross_entropy", "--device", "cuda"));
        args.addAll(List.of(more));
        return args;
    }

    private JsonNode json(Path file) throws Exception {
        return new ObjectMapper().readTree(Files.readString(file));
    }

    @Test
    void checkOnCudaPassesAndReportsTheDevice() throws Exception {
        Path report = dir.resolve("r.json");
        CliRun run = CliRun.asMain(check("--json", report.toString()).toArray(String[]::new));
        assertEquals(0, run.status(), run::all);
        JsonNode root = json(report);
        assertEquals("cuda:0", root.get("device").asText());
        assertTrue(root.get("reference_route").asText().startsWith("cuda"), root::toString);
    }

    @Test
    void candidateFilesLandOnTheChecksDevice() {
        CliRun good = CliRun.asMain(check("--candidate", Fixtures.file("mlp", "grads_func_sum.pt").toString(),
                "--reduction", "sum").toArray(String[]::new));
        assertEquals(0, good.status(), good::all);
        CliRun bad = CliRun.asMain(check("--candidate", Fixtures.file("mlp", "bug_perturbed.pt").toString(),
                "--reduction", "sum").toArray(String[]::new));
        assertEquals(1, bad.status(), bad::all);
    }

    @Test
    void cudaGraphsCheckPasses() throws Exception {
        Path report = dir.resolve("g.json");
        CliRun run = CliRun.asMain(check("--cuda-graphs", "--json", report.toString()).toArray(String[]::new));
        assertEquals(0, run.status(), run::all);
        String route = json(report).get("reference_route").asText();
        assertTrue(route.equals("cuda graphs") || route.startsWith("cuda streams (graph capture failed"), route);
    }

    @Test
    void probeOnCudaPasses() {
        CliRun run = CliRun.asMain("probe", "--model", MODEL, "--input", X, "--device", "cuda:0");
        assertEquals(0, run.status(), run::all);
    }

    @Test
    void conformOnCudaRunsTheMatrixThere() {
        CliRun run = CliRun.asMain("conform", "--only", "^Linear\\(5->3\\) on \\[B, 5\\]$", "--batch", "3",
                "--device", "cuda");
        assertEquals(0, run.status(), run::all);
    }

    @Test
    void benchOnCudaNamesTheDevice() throws Exception {
        Path out = dir.resolve("bench.json");
        CliRun run = CliRun.asMain("bench", "--suite", "mlp", "--batch", "2", "--forks", "0", "--warmups", "0",
                "--iterations", "1", "--iteration-time", "1", "--no-progress", "--methods", "vmap,backward",
                "--device", "cuda", "--json", out.toString());
        assertEquals(0, run.status(), run::all);
        assertEquals("cuda:0", json(out).get("device").asText());
    }
}
