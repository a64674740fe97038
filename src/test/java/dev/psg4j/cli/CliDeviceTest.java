package dev.psg4j.cli;

import dev.psg4j.Fixtures;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.check.Devices;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/**
 * {@code --device} on check, probe, bench and conform: a bad device exits 2 with one
 * line naming the cause before anything is loaded, and {@code --device cpu} reports the canonical
 * device and the reference's route. The CUDA runs are in {@link CliCudaTest}.
 */
class CliDeviceTest {
    private static final String MODEL = Fixtures.file("mlp", "model.pt").toString();
    private static final String X = Fixtures.file("mlp", "x.pt").toString();
    private static final String Y = Fixtures.file("mlp", "y.pt").toString();

    @TempDir
    Path dir;

    /** The command's arguments with {@code --device device} (nothing heavier than the mlp fixture). */
    private static List<String> command(String command, String device) {
        List<String> args = new ArrayList<>(List.of(command));
        switch (command) {
            case "check" -> args.addAll(List.of("--model", MODEL, "--input", X, "--target", Y, "--loss", "cross_entropy"));
            case "probe" -> args.addAll(List.of("--model", MODEL, "--input", X));
            case "bench" -> args.addAll(List.of("--suite", "mlp", "--batch", "2", "--forks", "0", "--warmups", "0",
                    "--iterations", "1", "--iteration-time", "1", "--no-progress"));
            case "conform" -> args.addAll(List.of("--only", "^Linear$", "--batch", "3"));
            default -> throw new IllegalArgumentException(command);
        }
        args.addAll(List.of("--device", device));
        return args;
    }

    private static String oneErrorLine(CliRun run) {
        assertEquals(2, run.status(), run::all);
        assertEquals(1, run.errLines().size(), run::err);
        return run.errLines().get(0);
    }

    @ParameterizedTest
    @ValueSource(strings = {"check", "probe", "bench", "conform"})
    void anUnknownDeviceExitsTwoInOneLine(String command) {
        for (String device : List.of("gpu", "cuda:x")) {
            String line = oneErrorLine(CliRun.asMain(command(command, device).toArray(String[]::new)));
            assertTrue(line.contains("--device " + device + ": unknown device '" + device + "'"), line);
            assertTrue(line.contains("use cpu, cuda or cuda:N"), line);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"check", "probe", "bench", "conform"})
    void cudaWithoutAVisibleDeviceExitsTwoSayingWhy(String command) {
        assumeFalse(Devices.cudaVisible(), "a CUDA device is visible: CliCudaTest runs --device cuda");
        String why = NativeCore.cuda_runtime_loaded() ? "no CUDA device is visible" : "no CUDA support";
        for (String device : List.of("cuda", "cuda:7")) {
            String line = oneErrorLine(CliRun.asMain(command(command, device).toArray(String[]::new)));
            assertTrue(line.contains("device '" + device + "'") && line.contains(why), line);
            assertTrue(line.contains("use --device cpu"), line);
        }
    }

    @Test
    void aDeviceIndexOutOfRangeExitsTwo() {
        String line = oneErrorLine(CliRun.asMain(command("check", "cuda:999").toArray(String[]::new)));
        assertTrue(line.contains("device 'cuda:999'"), line);
        assertTrue(Devices.cudaVisible() ? line.contains("does not exist") : line.contains("use --device cpu"), line);
    }

    @Test
    void checkOnTheCpuReportsTheCanonicalDeviceAndTheRoute() throws Exception {
        Path json = dir.resolve("report.json");
        List<String> args = command("check", "CPU");
        args.addAll(List.of("--json", json.toString()));
        CliRun run = CliRun.asMain(args.toArray(String[]::new));
        assertEquals(0, run.status(), run::all);
        assertTrue(run.out().contains("device cpu"), run::out);
        JsonNode report = new ObjectMapper().readTree(Files.readString(json));
        assertEquals("cpu", report.get("device").asText());
        assertEquals("cpu workers", report.get("reference_route").asText());
    }

    @Test
    void aCandidateFileIsCheckedOnTheChecksDevice() {
        List<String> args = command("check", "cpu");
        args.addAll(List.of("--candidate", Fixtures.file("mlp", "grads_func_sum.pt").toString(), "--reduction", "sum"));
        CliRun run = CliRun.asMain(args.toArray(String[]::new));
        assertEquals(0, run.status(), run::all);
    }

    @Test
    void probeRunsOnTheCpuDevice() {
        CliRun run = CliRun.asMain(command("probe", "cpu").toArray(String[]::new));
        assertEquals(0, run.status(), run::all);
    }
}
