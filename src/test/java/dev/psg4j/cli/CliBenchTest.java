package dev.psg4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.psg4j.bench.BenchResult;
import dev.psg4j.engine.PluginJars;
import dev.psg4j.report.HeadlessChromium;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code psg4j bench} in this JVM (--forks 0) with the shortest JMH settings: a tiny sweep's table,
 * JSON (one result per method and B) and HTML page (rendered in headless Chromium), and bad options.
 */
class CliBenchTest {
    private static final List<String> METHODS = List.of("vmap", "microbatch", "check-exact", "check-sketch", "probe",
            "backward", "check-in-loop", "dp-step", "dp-step-verified");
    private static final List<String> RATIOS = List.of("vmap/backward", "microbatch/vmap", "check-exact/backward",
            "check-sketch/backward", "check-exact/check-sketch", "probe/backward", "check-in-loop/backward",
            "dp-step-verified/dp-step");
    private static final List<Long> BATCHES = List.of(2L, 4L);

    @TempDir
    static Path work;
    /** The tiny sweep every test of its output reads: seq, B = 2 and 4, every method. */
    private static CliRun sweep;
    private static Path json;
    private static Path html;

    @BeforeAll
    static void runTheTinySweep() {
        // timings don't matter here: run even if another JMH holds its lock (a benchmark elsewhere on the machine)
        System.setProperty("jmh.ignoreLock", "true");
        json = work.resolve("bench.json");
        html = work.resolve("bench.html");
        sweep = CliRun.asMain(tiny("--suite", "seq", "--batch", "4,2", "--methods", String.join(",", METHODS),
                "--sketch-precision", "float-first", "--json", json.toString(), "--html", html.toString())
                .toArray(String[]::new));
    }

    private static List<String> tiny(String... more) {
        List<String> args = new ArrayList<>(List.of("bench", "--forks", "0", "--warmups", "0",
                "--iterations", "1", "--iteration-time", "20"));
        args.addAll(Arrays.asList(more));
        return args;
    }

    /** The header cells of the table whose header starts with {@code first} and the cells of the row for (suite, B). */
    private static List<List<String>> table(CliRun run, String first, String suite, long batch) {
        List<String> lines = run.out().lines().map(String::strip).toList();
        int start = -1;
        for (int k = 0; k < lines.size(); k++) {
            if (lines.get(k).startsWith("suite ") && lines.get(k).contains(first)) {
                start = k;
                break;
            }
        }
        assertTrue(start >= 0, () -> "no table with " + first + "\n" + run);
        List<String> header = List.of(lines.get(start).split("\\s+"));
        List<String> row = lines.subList(start + 1, lines.size()).stream()
                .takeWhile(l -> !l.startsWith("suite ")).map(l -> List.of(l.split("\\s+")))
                .filter(cells -> cells.size() > 1 && cells.get(0).equals(suite) && cells.get(1).equals(Long.toString(batch)))
                .findFirst().orElseThrow(() -> new AssertionError("no row " + suite + " B=" + batch + "\n" + run));
        assertEquals(header.size(), row.size(), run::toString);
        return List.of(header, row);
    }

    @Test
    void aTinySweepPrintsAMedianPerMethodAndBatchAndTheRatios() {
        assertEquals(0, sweep.status(), sweep::toString);
        assertEquals("", sweep.err(), "no progress bar without a terminal, nothing else on stderr\n" + sweep);
        assertTrue(sweep.out().startsWith("bench: B = 2,4, threads 1, device cpu, models built in Java"),
                sweep::toString);
        for (long b : BATCHES) {
            List<List<String>> medians = table(sweep, "vmap", "seq", b);
            List<String> expected = new ArrayList<>(List.of("suite", "B", "threads"));
            expected.addAll(METHODS);
            assertEquals(expected, medians.get(0), sweep::toString);
            for (int c = 3; c < expected.size(); c++) {
                assertTrue(Double.parseDouble(medians.get(1).get(c)) > 0, () -> "median not positive\n" + sweep);
            }
            List<List<String>> ratios = table(sweep, "vmap/backward", "seq", b);
            List<String> expectedRatios = new ArrayList<>(List.of("suite", "B", "threads"));
            expectedRatios.addAll(RATIOS);
            assertEquals(expectedRatios, ratios.get(0), sweep::toString);
            for (int c = 3; c < expectedRatios.size(); c++) {
                String cell = ratios.get(1).get(c);
                assertTrue(cell.endsWith("x") && Double.parseDouble(cell.substring(0, cell.length() - 1)) > 0,
                        () -> "bad ratio " + cell + "\n" + sweep);
            }
        }
        assertTrue(sweep.out().contains("JSON results written to " + json), sweep::toString);
        assertTrue(sweep.out().contains("HTML page written to " + html), sweep::toString);
    }

    @Test
    void theJsonHoldsOneResultPerMethodAndBatchAndRatiosOfThoseMedians() throws IOException {
        assertEquals(0, sweep.status(), sweep::toString);
        JsonNode root = new ObjectMapper().readTree(json.toFile());
        assertEquals(3, root.get("schema_version").asInt());
        assertTrue(root.get("engine").isNull(), root::toPrettyString);
        assertEquals("cpu", root.get("device").asText());
        assertEquals("java", root.get("models").asText());
        assertEquals(0, root.get("jmh").get("forks").asInt());
        assertEquals("float-first", root.get("sketch_precision").asText());
        assertEquals("[\"seq\"]", root.get("suites").toString());
        assertEquals("[2,4]", root.get("batches").toString());
        assertEquals("[1]", root.get("threads").toString());
        assertEquals(METHODS, texts(root.get("methods")));

        JsonNode results = root.get("results");
        assertEquals(METHODS.size() * BATCHES.size(), results.size(), root::toPrettyString);
        Set<String> seen = new HashSet<>();
        for (JsonNode r : results) {
            assertEquals("seq", r.get("suite").asText());
            assertEquals(1, r.get("threads").asInt());
            assertTrue(r.get("median_ms").asDouble() > 0, root::toPrettyString);
            assertTrue(r.get("score_ms").asDouble() > 0, root::toPrettyString);
            assertTrue(r.has("score_error_ms"), root::toPrettyString);
            assertTrue(r.get("samples").asLong() >= 1, root::toPrettyString);
            assertTrue(r.get("peak_extra_bytes").asLong() > 0, root::toPrettyString);
            if (r.get("method").asText().equals("vmap")) {
                assertTrue(r.get("verified").asBoolean(), root::toPrettyString);
            } else {
                assertTrue(r.get("verified").isNull(), root::toPrettyString);
            }
            seen.add(r.get("method").asText() + "@" + r.get("batch").asLong());
        }
        for (String m : METHODS) {
            for (long b : BATCHES) {
                assertTrue(seen.contains(m + "@" + b), () -> "no result for " + m + " at B = " + b);
            }
        }

        JsonNode ratios = root.get("ratios");
        assertEquals(RATIOS.size() * BATCHES.size(), ratios.size(), root::toPrettyString);
        for (JsonNode r : ratios) {
            String[] parts = r.get("ratio").asText().split("/");
            long b = r.get("batch").asLong();
            assertEquals(median(results, parts[0], b) / median(results, parts[1], b), r.get("value").asDouble(), 1e-9);
        }
    }

    @Test
    void theHtmlPageRendersOneChartPerModelWithALinePerMethodOnLogAxes() throws Exception {
        assertEquals(0, sweep.status(), sweep::toString);
        String dom = HeadlessChromium.findOrInstall(work).dumpDom(html, work);
        int chart = dom.indexOf("id=\"chart-seq\"");
        assertTrue(chart >= 0, "no chart for seq");
        String seq = dom.substring(chart, dom.indexOf("</figure>", chart));
        assertTrue(seq.contains("data-rendered=\"true\""), "ECharts did not finish the chart:\n" + seq);
        assertTrue(seq.contains("<svg"), seq);
        for (String m : METHODS) {
            assertTrue(seq.contains(">" + m + "</text>"), "no legend entry " + m + ":\n" + seq);
        }
        // a log2 axis from B = 2 to 4, a log10 axis of milliseconds, both named
        assertTrue(seq.contains(">2</text>") && seq.contains(">4</text>"), "no B ticks:\n" + seq);
        assertTrue(seq.contains(">B (samples per batch)</text>") && seq.contains(">ms per call (median)</text>"), seq);
        // one row per method and B in the timings table
        for (String m : METHODS) {
            for (long b : BATCHES) {
                assertTrue(dom.contains(" data-suite=\"seq\" data-method=\"" + m + "\" data-batch=\"" + b + "\">"),
                        "no table row for " + m + " at B = " + b);
            }
        }
    }

    @Test
    void someMethodsOnlyGetTheirColumnsAndRatios() {
        CliRun run = CliRun.asMain(tiny("--suite", "mlp", "--batch", "2", "--methods", "backward,vmap")
                .toArray(String[]::new));
        assertEquals(0, run.status(), run::toString);
        assertEquals(List.of("suite", "B", "threads", "vmap", "backward"), table(run, "vmap", "mlp", 2).get(0),
                run::toString);
        assertEquals(List.of("suite", "B", "threads", "vmap/backward"), table(run, "vmap/backward", "mlp", 2).get(0),
                run::toString);
    }

    @ParameterizedTest
    @ValueSource(strings = {"--suite=nope", "--methods=vmap,nope", "--methods=check", "--methods=vmap,,backward",
            "--batch=x", "--batch=0", "--batch=1,x", "--batch=8,-1", "--batch=1,,8", "--batch=99999999999999999999",
            "--threads=0", "--threads=1,y", "--forks=-1", "--iterations=0", "--models=/no/such/folder",
            "--json=/no/such/folder/b.json", "--html=/no/such/folder/b.html", "--frobnicate", "--sketch-precision=half"})
    void aBadOptionExitsTwoWithOneLine(String option) {
        CliRun run = CliRun.asMain("bench", option);
        assertEquals(2, run.status(), run::toString);
        assertEquals(1, run.errLines().size(), run::toString);
        assertTrue(run.errLines().get(0).startsWith("psg4j bench: "), run::toString);
        assertEquals("", run.out(), run::toString);
    }

    @Test
    void aBadBatchEntryIsNamed() {
        CliRun run = CliRun.asMain("bench", "--batch", "1,x");
        assertEquals("psg4j bench: --batch: 'x' is not a whole number; give a comma list of whole numbers of at "
                + "least 1, like 1,8,32", run.errLines().get(0), run::toString);
        CliRun zero = CliRun.asMain("bench", "--batch", "0");
        assertTrue(zero.errLines().get(0).contains("--batch: 0 is below 1"), zero::toString);
        CliRun method = CliRun.asMain("bench", "--methods", "check");
        assertTrue(method.errLines().get(0).contains("unknown method 'check': use a comma list of vmap, microbatch, "
                + "check-exact, check-sketch, probe, backward"), method::toString);
    }

    @Test
    void aModelsFolderWithoutTheExportSaysHowToMakeIt(@TempDir Path dir) {
        CliRun run = CliRun.of("bench", "--models", dir.toString(), "--suite", "cnn", "--batch", "8");
        assertEquals(2, run.status(), run::toString);
        assertEquals(1, run.errLines().size(), run::toString);
        assertTrue(run.err().contains("cnn.pt does not exist") && run.err().contains("bench_python.py --export "
                + dir + " --batch 8"), run::toString);
    }

    // ---- --engine, --model, verification and memory ----

    private static final String SERVICES = "META-INF/services/dev.psg4j.engine.GradSamplerProvider";
    private static final Path FIXTURE = Path.of("src", "test", "resources", "fixtures", "mlp");
    private static Path hooksLinear;

    /** The example plug-in's jar, built once (as its author would, against psg4j's API only). */
    private static synchronized Path hooksLinear() {
        if (hooksLinear == null) {
            hooksLinear = PluginJars.build("hooks-linear", work);
        }
        return hooksLinear;
    }

    /** A plug-in whose sampler returns vmap's per-sample gradients times 2: a contribution counted twice. */
    private static Path doublingPlugin() {
        String source = "package com.example.twice;\n"
                + "import dev.psg4j.check.*;\n"
                + "import dev.psg4j.model.Model;\n"
                + "import org.bytedeco.pytorch.Scalar;\n"
                + "import org.bytedeco.pytorch.Tensor;\n"
                + "import java.util.LinkedHashMap;\n"
                + "import java.util.Map;\n"
                + "public final class TwiceProvider implements dev.psg4j.engine.GradSamplerProvider {\n"
                + "  public String name() { return \"twice\"; }\n"
                + "  public String description() { return \"vmap times 2\"; }\n"
                + "  public GradSampler create(dev.psg4j.engine.SamplerOptions o) {\n"
                + "    GradSampler vmap = dev.psg4j.engine.Engines.vmap();\n"
                + "    return new GradSampler() {\n"
                + "      public String name() { return \"twice\"; }\n"
                + "      public Map<String, Tensor> perSampleGradients(Model m, Batch b, Loss l, Reduction r) {\n"
                + "        Map<String, Tensor> out = new LinkedHashMap<>();\n"
                + "        for (Map.Entry<String, Tensor> e : vmap.perSampleGradients(m, b, l, r).entrySet()) {\n"
                + "          out.put(e.getKey(), e.getValue().mul(new Scalar(2.0)));\n"
                + "          e.getValue().close();\n"
                + "        }\n"
                + "        return out;\n"
                + "      }\n"
                + "    };\n"
                + "  }\n"
                + "}\n";
        return PluginJars.build(null, Map.of(SERVICES, "com.example.twice.TwiceProvider\n",
                "com/example/twice/TwiceProvider.java", source), work.resolve("twice.jar"));
    }

    private static List<String> userModel(String... more) {
        List<String> args = new ArrayList<>(List.of("--model", FIXTURE.resolve("model.pt").toString(),
                "--input", FIXTURE.resolve("x.pt").toString(), "--target", FIXTURE.resolve("y.pt").toString(),
                "--loss", "cross_entropy"));
        args.addAll(Arrays.asList(more));
        return args;
    }

    private static JsonNode result(JsonNode root, String suite, String method, long batch) {
        for (JsonNode r : root.get("results")) {
            if (r.get("suite").asText().equals(suite) && r.get("method").asText().equals(method)
                    && r.get("batch").asLong() == batch) {
                return r;
            }
        }
        throw new AssertionError("no " + suite + "/" + method + " at B = " + batch + "\n" + root.toPrettyString());
    }

    /** The cells of the memory table's row for (suite, B), after its header. */
    private static List<List<String>> memoryTable(CliRun run, String suite, long batch) {
        List<String> lines = run.out().lines().map(String::strip).toList();
        int caption = lines.indexOf(BenchResult.MEMORY_CAPTION);
        assertTrue(caption >= 0, () -> "no memory table\n" + run);
        List<String> header = List.of(lines.get(caption + 1).split("\\s+"));
        List<String> row = lines.subList(caption + 2, lines.size()).stream().map(l -> List.of(l.split("\\s+")))
                .filter(cells -> cells.size() == header.size() && cells.get(0).equals(suite)
                        && cells.get(1).equals(Long.toString(batch)))
                .findFirst().orElseThrow(() -> new AssertionError("no memory row " + suite + " B=" + batch + "\n" + run));
        return List.of(header, row);
    }

    @Test
    void aPluginEngineIsTimedNextToVmapVerifiedAtEveryBatchWithItsMemory() throws Exception {
        Path out = work.resolve("plugin.json");
        Path page = work.resolve("plugin.html");
        CliRun run = CliRun.asMain(tiny("--suite", "mlp", "--batch", "2,4", "--engine", "example-hooks-linear",
                "--plugin", hooksLinear().toString(), "--methods", "vmap,microbatch,backward,engine",
                "--json", out.toString(), "--html", page.toString()).toArray(String[]::new));
        assertEquals(0, run.status(), run::toString);
        List<String> expected = List.of("suite", "B", "threads", "vmap", "microbatch", "backward", "example-hooks-linear");
        for (long b : List.of(2L, 4L)) {
            List<List<String>> medians = table(run, "vmap", "mlp", b);
            assertEquals(expected, medians.get(0), run::toString);
            medians.get(1).subList(3, expected.size()).forEach(cell -> assertTrue(Double.parseDouble(cell) > 0, run::toString));
            List<List<String>> memory = memoryTable(run, "mlp", b);
            assertEquals(expected, memory.get(0), run::toString);
            memory.get(1).subList(3, expected.size()).forEach(cell -> assertTrue(Double.parseDouble(cell) >= 0, run::toString));
        }
        assertTrue(table(run, "example-hooks-linear/vmap", "mlp", 2).get(0).contains("example-hooks-linear/backward"),
                run::toString);
        assertTrue(!run.out().contains("WRONG") && !run.out().contains("unsupported"), run::toString);

        JsonNode root = new ObjectMapper().readTree(out.toFile());
        assertEquals("example-hooks-linear", root.get("engine").asText());
        for (long b : List.of(2L, 4L)) {
            JsonNode engine = result(root, "mlp", "engine", b);
            assertTrue(engine.get("verified").asBoolean(), root::toPrettyString);
            assertEquals("passed", engine.get("verification").asText());
            assertTrue(engine.get("median_ms").asDouble() > 0, root::toPrettyString);
            for (String m : List.of("vmap", "microbatch", "backward", "engine")) {
                assertTrue(result(root, "mlp", m, b).get("peak_extra_bytes").asLong() > 0, root::toPrettyString);
            }
        }

        String dom = HeadlessChromium.findOrInstall(work).dumpDom(page, work);
        for (String id : List.of("chart-mlp", "memory-mlp")) {
            int at = dom.indexOf("id=\"" + id + "\"");
            assertTrue(at >= 0, "no " + id);
            String chart = dom.substring(at, dom.indexOf("</figure>", at));
            assertTrue(chart.contains("data-rendered=\"true\""), chart);
            assertTrue(chart.contains(">example-hooks-linear</text>"), "no legend entry for the engine:\n" + chart);
        }
        assertTrue(dom.contains(">peak extra MiB per call</text>"), "no memory axis");
        assertTrue(dom.contains("<tr data-verification=\"passed\" data-suite=\"mlp\" data-method=\"engine\" data-batch=\"4\">"),
                "no verified row for the engine at B = 4");
    }

    @Test
    void aUserModelIsTimedOnTheFirstBSamplesOfItsInput() throws Exception {
        Path out = work.resolve("user.json");
        CliRun run = CliRun.asMain(tiny(userModel("--batch", "2,6", "--engine", "example-hooks-linear",
                "--plugin", hooksLinear().toString(), "--methods", "vmap,microbatch,backward,engine",
                "--json", out.toString()).toArray(String[]::new)).toArray(String[]::new));
        assertEquals(0, run.status(), run::toString);
        assertTrue(run.out().contains("models from " + FIXTURE.resolve("model.pt")), run::toString);
        assertEquals(List.of("suite", "B", "threads", "vmap", "microbatch", "backward", "example-hooks-linear"),
                table(run, "vmap", "model.pt", 6).get(0), run::toString);
        JsonNode root = new ObjectMapper().readTree(out.toFile());
        assertEquals("[2,6]", root.get("batches").toString());
        for (long b : List.of(2L, 6L)) {
            assertTrue(result(root, "model.pt", "engine", b).get("verified").asBoolean(), root::toPrettyString);
            assertTrue(result(root, "model.pt", "vmap", b).get("verified").asBoolean(), root::toPrettyString);
            assertTrue(result(root, "model.pt", "backward", b).get("peak_extra_bytes").asLong() > 0, root::toPrettyString);
        }
        // no --batch: the input's whole batch
        CliRun whole = CliRun.asMain(tiny(userModel("--methods", "backward").toArray(String[]::new))
                .toArray(String[]::new));
        assertEquals(0, whole.status(), whole::toString);
        assertTrue(whole.out().startsWith("bench: B = 6,"), whole::toString);
    }

    @Test
    void aWrongSamplersTimingIsMarkedWrongWithItsFirstFailure() throws Exception {
        Path out = work.resolve("wrong.json");
        CliRun run = CliRun.asMain(tiny("--suite", "mlp", "--batch", "2", "--engine", "twice", "--plugin",
                doublingPlugin().toString(), "--methods", "vmap,engine", "--json", out.toString()).toArray(String[]::new));
        assertEquals(0, run.status(), run::toString);
        List<String> lines = run.out().lines().map(String::strip).toList();
        assertTrue(lines.stream()
                .anyMatch(l -> List.of(l.split("\\s+")).equals(List.of("suite", "B", "threads", "vmap", "twice"))), run::toString);
        // the median cell of twice is "<ms> WRONG": one more word than the header
        String row = run.out().lines().map(String::strip).filter(l -> l.startsWith("mlp ")).findFirst().orElseThrow();
        assertTrue(row.matches("mlp\\s+2\\s+1\\s+[0-9.]+\\s+[0-9.]+ WRONG"), row);
        assertTrue(run.out().contains("WRONG: twice on mlp at B = 2: "), run::toString);
        JsonNode twice = result(new ObjectMapper().readTree(out.toFile()), "mlp", "engine", 2);
        assertEquals(false, twice.get("verified").asBoolean());
        assertEquals("wrong", twice.get("verification").asText());
        assertTrue(twice.get("failure").asText().length() > 0 && !twice.get("failure").asText().contains("\n"), twice::toString);
        assertTrue(twice.get("median_ms").asDouble() > 0, twice::toString);
    }

    @Test
    void aSamplerThatRefusesTheModelIsMarkedUnsupportedAndNotTimed() throws Exception {
        Path out = work.resolve("unsupported.json");
        CliRun run = CliRun.asMain(tiny("--suite", "cnn", "--batch", "2", "--engine", "example-hooks-linear",
                "--plugin", hooksLinear().toString(), "--methods", "backward,engine", "--json", out.toString())
                .toArray(String[]::new));
        assertEquals(0, run.status(), run::toString);
        assertEquals("unsupported", table(run, "backward", "cnn", 2).get(1).get(4), run::toString);
        assertTrue(run.out().contains("unsupported: example-hooks-linear on cnn at B = 2: "), run::toString);
        JsonNode engine = result(new ObjectMapper().readTree(out.toFile()), "cnn", "engine", 2);
        assertEquals("unsupported", engine.get("verification").asText());
        assertEquals(false, engine.get("verified").asBoolean());
        assertTrue(engine.get("median_ms").isNull() && engine.get("peak_extra_bytes").isNull(), engine::toString);
        assertTrue(engine.get("failure").asText().contains("Linear layers only"), engine::toString);
    }

    @Test
    void badEngineOrModelInputExitsTwoWithOneLine() {
        String model = FIXTURE.resolve("model.pt").toString();
        String x = FIXTURE.resolve("x.pt").toString();
        Map<List<String>, String> cases = Map.of(
                userModel("--batch", "2,7"), "--batch 7 is more than the 6 samples of --input",
                List.of("--model", model), "--input",
                List.of("--engine", "nope"), "unknown engine 'nope'",
                List.of("--methods", "vmap,engine"), "give --engine NAME",
                List.of("--plugin", hooksLinear().toString()), "--plugin given without --engine",
                List.of("--loss", "mse"), "--loss belongs to a model of your own",
                List.of("--model", model, "--input", x, "--suite", "mlp"), "--suite and --model",
                List.of("--model", model, "--input", x, "--models", work.toString()), "--models");
        cases.forEach((args, expected) -> {
            List<String> all = new ArrayList<>(List.of("bench"));
            all.addAll(args);
            CliRun run = CliRun.asMain(all.toArray(String[]::new));
            assertEquals(2, run.status(), run::toString);
            assertEquals(1, run.errLines().size(), run::toString);
            assertTrue(run.errLines().get(0).startsWith("psg4j bench: ") && run.errLines().get(0).contains(expected),
                    () -> expected + "\n" + run);
            assertEquals("", run.out(), run::toString);
        });
    }

    private static List<String> texts(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }

    private static double median(JsonNode results, String method, long batch) {
        for (JsonNode r : results) {
            if (r.get("method").asText().equals(method) && r.get("batch").asLong() == batch) {
                return r.get("median_ms").asDouble();
            }
        }
        throw new AssertionError("no " + method + " at B = " + batch);
    }
}
