package dev.psg4j.cli;

import dev.psg4j.Fixtures;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CliCheckTest {

    static Stream<Arguments> candidates() {
        List<Arguments> out = new ArrayList<>();
        for (String fixture : Fixtures.names()) {
            Iterator<Map.Entry<String, JsonNode>> it = Fixtures.entry(fixture).get("candidates").fields();
            while (it.hasNext()) {
                Map.Entry<String, JsonNode> c = it.next();
                out.add(Arguments.of(fixture, c.getKey(), c.getValue().get("expect_pass").asBoolean()));
            }
        }
        return out.stream();
    }

    /** Every candidate of every fixture (func, opacus, planted bugs) gets the verdict the manifest expects. */
    @ParameterizedTest(name = "{0}/{1} expect pass = {2}")
    @MethodSource("candidates")
    void candidateExitStatusFollowsTheManifest(String fixture, String candidate, boolean expectPass) {
        CliRun run = CliRun.of(CliRun.candidateArgs(fixture, candidate).toArray(String[]::new));
        assertEquals(expectPass ? 0 : 1, run.status(), run::toString);
        assertTrue(run.out().startsWith(expectPass ? "PASSED" : "FAILED"), run::toString);
        assertEquals("", run.err(), run::toString);
    }

    static Stream<Arguments> funcCandidates() {
        return Fixtures.names().stream().flatMap(f -> Stream.of("sum", "mean")
                .map(r -> Arguments.of(f, "grads_func_" + r + ".pt")));
    }

    /** torch.func's gradients are right for every fixture, both reductions: exit 0, nothing on stderr. */
    @ParameterizedTest(name = "{0}/{1}")
    @MethodSource("funcCandidates")
    void funcCandidatesPassForSumAndMean(String fixture, String candidate) {
        CliRun run = CliRun.of(CliRun.candidateArgs(fixture, candidate).toArray(String[]::new));
        assertEquals(0, run.status(), run::toString);
        assertTrue(run.out().contains("engine " + candidate), run::toString);
    }

    static Stream<Arguments> plantedBugs() {
        List<Arguments> out = new ArrayList<>();
        Iterator<Map.Entry<String, JsonNode>> it = Fixtures.entry("mlp").get("candidates").fields();
        while (it.hasNext()) {
            Map.Entry<String, JsonNode> c = it.next();
            if (!c.getValue().get("expect_pass").asBoolean()) {
                out.add(Arguments.of(c.getKey(), c.getValue()));
            }
        }
        return out.stream();
    }

    /** A planted bug exits 1 and the printed output names its parameter and each bad sample. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("plantedBugs")
    void plantedBugIsNamed(String candidate, JsonNode bug) {
        CliRun run = CliRun.of(CliRun.candidateArgs("mlp", candidate).toArray(String[]::new));
        assertEquals(1, run.status(), run::toString);
        String param = bug.get("bug_param").asText();
        String reduction = bug.get("reduction").asText();
        assertTrue(run.out().contains(reduction + " / " + param), () -> "no '" + param + "' in\n" + run);
        if (bug.hasNonNull("bug_samples")) {
            for (JsonNode s : bug.get("bug_samples")) {
                String where = param + " / sample " + s.asInt() + ":";
                assertTrue(run.out().contains(where), () -> "no '" + where + "' in\n" + run);
            }
        }
        String verdict = switch (bug.get("kind").asText()) {
            case "missing_param" -> "MISSING";
            case "extra_param" -> "EXTRA";
            case "shape" -> "WRONG SHAPE";
            case "non_finite" -> "NON-FINITE";
            default -> "MISMATCH";
        };
        assertTrue(run.out().contains(verdict), () -> "no verdict " + verdict + " in\n" + run);
    }

    @Test
    void transposeTrapOpacusFailsFuncPasses() {
        for (String reduction : List.of("sum", "mean")) {
            CliRun opacus = CliRun.of(CliRun.candidateArgs("transpose_trap", "grads_opacus_" + reduction + ".pt")
                    .toArray(String[]::new));
            assertEquals(1, opacus.status(), opacus::toString);
            assertTrue(opacus.out().contains(reduction + " / fc.weight / sample 0:"), opacus::toString);
            CliRun func = CliRun.of(CliRun.candidateArgs("transpose_trap", "grads_func_" + reduction + ".pt")
                    .toArray(String[]::new));
            assertEquals(0, func.status(), func::toString);
        }
    }

    /** Without --candidate an engine computes the candidate (vmap by default); both pass on every fixture, both reductions. */
    @ParameterizedTest
    @ValueSource(strings = {"mlp", "cnn", "two_input", "time_first", "transpose_trap", "emb"})
    void engineChecksPass(String fixture) {
        for (String engine : List.of("vmap", "microbatch")) {
            List<String> args = new ArrayList<>(CliRun.checkArgs(fixture));
            if (engine.equals("microbatch")) {
                args.addAll(List.of("--engine", "microbatch"));
            }
            CliRun run = CliRun.of(args.toArray(String[]::new));
            assertEquals(0, run.status(), run::toString);
            assertTrue(run.out().contains("engine " + engine), run::toString);
            assertTrue(run.out().contains(" sum ") && run.out().contains(" mean "), run::toString);
        }
    }

    /** A model vmap cannot vectorize: exit 2, one line naming the op and the way out; microbatch checks it. */
    @Test
    void unsupportedModelNamesTheOpAndTheMicrobatchEngine() {
        String model = Fixtures.LAYER_MATRIX.file("item_scale", "model.pt").toString();
        String x = Fixtures.LAYER_MATRIX.file("item_scale", "x.pt").toString();
        // item_scale also mixes the batch (a batch maximum through .item()): with probes the check stops there
        CliRun probed = CliRun.of("check", "--model", model, "--input", x);
        assertEquals(1, probed.status(), probed::toString);
        assertTrue(probed.out().contains("batch mixing: "), probed::toString);
        CliRun run = CliRun.of("check", "--model", model, "--input", x, "--no-probes");
        assertEquals(2, run.status(), run::toString);
        assertEquals(1, run.errLines().size(), run::toString);
        assertTrue(run.errLines().get(0).contains("aten::item") && run.errLines().get(0).contains("--engine microbatch"),
                run::toString);
        assertEquals(0, CliRun.of("check", "--model", model, "--input", x, "--engine", "microbatch", "--no-probes").status());
    }

    @Test
    void vmapInChunksWithRandomnessOption() {
        List<String> args = new ArrayList<>(CliRun.checkArgs("cnn"));
        args.addAll(List.of("--chunk-size", "2", "--randomness", "different"));
        CliRun run = CliRun.of(args.toArray(String[]::new));
        assertEquals(0, run.status(), run::toString);
        assertTrue(run.out().startsWith("PASSED: engine vmap"), run::toString);
    }

    @Test
    void multiInputModelWithMseAndTargets() {
        CliRun run = CliRun.of("check", "--model", Fixtures.file("two_input", "model.pt").toString(),
                "--input", Fixtures.file("two_input", "x.pt").toString(),
                "--target", Fixtures.file("two_input", "y.pt").toString(), "--loss", "mse",
                "--candidate", Fixtures.file("two_input", "grads_func_mean.pt").toString(), "--reduction", "mean");
        assertEquals(0, run.status(), run::toString);
        assertTrue(run.out().contains("fa.weight") && run.out().contains("fb.bias"), run::toString);
    }

    @Test
    void timeFirstWithBatchDimOne() {
        CliRun run = CliRun.of("check", "--model", Fixtures.file("time_first", "model.pt").toString(),
                "--input", Fixtures.file("time_first", "x.pt").toString(), "--batch-dim", "1",
                "--candidate", Fixtures.file("time_first", "grads_func_sum.pt").toString(), "--reduction", "sum");
        assertEquals(0, run.status(), run::toString);
        assertTrue(run.out().contains("B = 3"), run::toString);
    }

    @Test
    void embeddingWithInt64Inputs() {
        CliRun run = CliRun.of("check", "--model", Fixtures.file("emb", "model.pt").toString(),
                "--input", Fixtures.file("emb", "x.pt").toString(),
                "--candidate", Fixtures.file("emb", "grads_opacus_sum.pt").toString(), "--reduction", "sum",
                "--threads", "2");
        assertEquals(0, run.status(), run::toString);
        assertTrue(run.out().contains("0.weight"), run::toString);
    }

    @Test
    void toleranceOptionsAreUsed() {
        List<String> args = new ArrayList<>(CliRun.candidateArgs("mlp", "bug_perturbed.pt"));
        args.addAll(List.of("--atol", "10", "--rtol", "0"));
        CliRun run = CliRun.of(args.toArray(String[]::new));
        assertEquals(0, run.status(), run::toString);
        assertTrue(run.out().contains("atol 10.0, rtol 0.0"), run::toString);
    }

    @Test
    void jsonReportHasTheDesignFields(@TempDir Path dir) throws IOException {
        Path json = dir.resolve("report.json");
        List<String> args = new ArrayList<>(CliRun.candidateArgs("mlp", "bug_swapped.pt"));
        args.addAll(List.of("--json", json.toString()));
        CliRun run = CliRun.of(args.toArray(String[]::new));
        assertEquals(1, run.status(), run::toString);

        JsonNode report = new ObjectMapper().readTree(json.toFile());
        for (String field : List.of("passed", "engine", "batch_size", "device", "reductions", "failures", "diagnoses")) {
            assertTrue(report.has(field), "no field " + field + " in " + report);
        }
        assertFalse(report.get("passed").asBoolean());
        assertEquals("bug_swapped.pt", report.get("engine").asText());
        assertEquals(6, report.get("batch_size").asInt());
        assertEquals("cpu", report.get("device").asText());
        JsonNode sum = report.get("reductions").get(0);
        assertEquals("sum", sum.get("reduction").asText());
        assertFalse(sum.get("passed").asBoolean());
        JsonNode w2 = null;
        for (JsonNode p : sum.get("params")) {
            for (String field : List.of("name", "shape", "passed", "max_abs_err", "max_rel_err", "worst_sample",
                    "bad_samples", "non_finite")) {
                assertTrue(p.has(field), "no field " + field + " in " + p);
            }
            if (p.get("name").asText().equals("2.weight")) {
                w2 = p;
            }
        }
        assertTrue(w2 != null && !w2.get("passed").asBoolean(), sum::toString);
        assertEquals(List.of(1, 3), ints(w2.get("bad_samples")));
        assertEquals(List.of(6L, 4L, 16L), longs(w2.get("shape")));
        JsonNode rel = w2.get("sample_max_rel_err");
        assertEquals(6, rel.size(), w2::toString);
        assertEquals(6, w2.get("sample_max_abs_err").size(), w2::toString);
        for (int i = 0; i < 6; i++) {
            boolean bad = i == 1 || i == 3;
            assertEquals(bad, w2.get("sample_max_tol_ratio").get(i).asDouble() > 1, w2::toString);
        }
        assertEquals(w2.get("max_rel_err").asDouble(), Math.max(rel.get(1).asDouble(), rel.get(3).asDouble()));

        List<Integer> failedSamples = new ArrayList<>();
        for (JsonNode f : report.get("failures")) {
            for (String field : List.of("reduction", "param", "sample", "kind", "message")) {
                assertTrue(f.has(field), "no field " + field + " in " + f);
            }
            assertEquals("2.weight", f.get("param").asText(), f::toString);
            assertEquals("value", f.get("kind").asText(), f::toString);
            failedSamples.add(f.get("sample").asInt());
        }
        assertEquals(List.of(1, 3), failedSamples);
    }

    @Test
    void htmlReportIsWritten(@TempDir Path dir) throws IOException {
        Path html = dir.resolve("report.html");
        List<String> args = new ArrayList<>(CliRun.candidateArgs("mlp", "bug_swapped.pt"));
        args.addAll(List.of("--html", html.toString()));
        CliRun run = CliRun.of(args.toArray(String[]::new));
        assertEquals(1, run.status(), run::toString);
        assertTrue(run.out().contains("HTML report written to " + html), run::toString);
        String page = Files.readString(html);
        assertTrue(page.startsWith("<!DOCTYPE html>"), () -> page.substring(0, 200));
        assertTrue(page.contains("<table id=\"verdicts\">"));
        assertTrue(page.contains("id=\"heatmap-0\""));
        assertFalse(page.contains("<script src="), "the page must not load scripts from elsewhere");
    }

    private static List<Integer> ints(JsonNode array) {
        List<Integer> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asInt()));
        return out;
    }

    private static List<Long> longs(JsonNode array) {
        List<Long> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asLong()));
        return out;
    }
}
