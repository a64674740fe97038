package dev.psg4j.bench;

import dev.psg4j.report.HtmlPages;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import picocli.CommandLine.Help.Ansi;
import picocli.CommandLine.Help.Column;
import picocli.CommandLine.Help.Column.Overflow;
import picocli.CommandLine.Help.TextTable;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.function.Function;

/**
 * What {@code psg4j bench} measured: one {@link Row} per (suite model, method, B, threads) with the
 * median (p50) time of one call in milliseconds over all of JMH's measured samples, JMH's own score
 * (the mean) and its error, and the ratios between methods at the same (model, B, threads).
 *
 * @param device   where they ran ("cpu")
 * @param models   "java" for the suite built in Java with seeded weights, else the folder whose exported weights and inputs it took
 * @param settings how JMH ran
 * @param engine   the name of the sampler the {@link BenchMethod#ENGINE} method timed, or null
 * @param rows     every timing, ordered by model (suite order), B, threads, method
 */
public record BenchResult(String device, String models, Settings settings, String engine, List<Row> rows) {

    /** The {@link #models} value for the suite built in Java. */
    public static final String BUILT_IN = "java";

    /**
     * The JSON layout's version: 2 is the sweep's (one result per model, method, B, threads); 3 adds
     * the engine, each result's verification and peak extra memory, and null timings for samplers
     * that were not timed (unsupported or failed).
     */
    public static final int SCHEMA_VERSION = 3;

    private static final double MIB = 1024.0 * 1024.0;

    /** The ratios reported, numerator over denominator, when both were timed. */
    public static final List<Ratio> RATIOS = List.of(
            new Ratio(BenchMethod.VMAP, BenchMethod.BACKWARD),
            new Ratio(BenchMethod.MICROBATCH, BenchMethod.VMAP),
            new Ratio(BenchMethod.CHECK_EXACT, BenchMethod.BACKWARD),
            new Ratio(BenchMethod.CHECK_SKETCH, BenchMethod.BACKWARD),
            new Ratio(BenchMethod.CHECK_EXACT, BenchMethod.CHECK_SKETCH),
            new Ratio(BenchMethod.PROBE, BenchMethod.BACKWARD),
            new Ratio(BenchMethod.CHECK_IN_LOOP, BenchMethod.BACKWARD),
            new Ratio(BenchMethod.DP_STEP_VERIFIED, BenchMethod.DP_STEP),
            new Ratio(BenchMethod.ENGINE, BenchMethod.BACKWARD),
            new Ratio(BenchMethod.ENGINE, BenchMethod.VMAP));

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final Comparator<Row> ORDER = Comparator.<Row>comparingInt(r -> suiteIndex(r.suite()))
            .thenComparingLong(Row::batch).thenComparingInt(Row::threads).thenComparing(Row::method);

    public BenchResult {
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(models, "models");
        Objects.requireNonNull(settings, "settings");
        rows = rows.stream().sorted(ORDER).toList();
    }

    /**
     * How JMH ran (sample-time mode, per benchmark {@code forks} JVMs of warm-up then measured
     * iterations) and the sketch methods' projection precision ({@code SketchPrecision.label()}).
     */
    public record Settings(int warmups, int iterations, long iterationMillis, int forks, String sketchPrecision) {
    }

    /**
     * One method on one model at one B and thread count: the median time of a call (ms) over
     * {@code samples} timed calls, and JMH's score for it (the mean, ms) with its error (the
     * half-width of the 99.9% confidence interval, ms; NaN when JMH has too few samples for one).
     */
    public record Timing(double medianMs, double scoreMs, double scoreErrorMs, long samples) {
    }

    /**
     * A timing and what it timed.
     *
     * @param timing          null when the sampler was not timed (its verification says why)
     * @param verification    the sampler's check at this B (vmap, engine); null for the other methods
     * @param peakExtraBytes  peak resident bytes above the baseline over one call (see {@link PeakMemory}); null when not run
     */
    public record Row(String suite, BenchMethod method, long batch, int threads, Timing timing,
                      Verification verification, Long peakExtraBytes) {
        public Row {
            Objects.requireNonNull(suite, "suite");
            Objects.requireNonNull(method, "method");
            if (timing == null && (verification == null || verification.status().timed())) {
                throw new IllegalArgumentException("only a sampler that was not timed has no timing");
            }
        }

        /** The row's median cell: the ms, marked when the sampler is wrong; the verdict alone when not timed. */
        String medianCell() {
            if (timing == null) {
                return verification.status().mark();
            }
            String ms = format(OptionalDouble.of(timing.medianMs()), "%s");
            return verification != null && verification.status() == Verification.Status.WRONG
                    ? ms + " " + verification.status().mark() : ms;
        }
    }

    /** The name reports give {@code method}: the engine's own name for {@link BenchMethod#ENGINE}. */
    public String label(BenchMethod method) {
        return method == BenchMethod.ENGINE && engine != null ? engine : method.label();
    }

    /** {@code numerator / denominator}, e.g. vmap/backward. */
    public record Ratio(BenchMethod numerator, BenchMethod denominator) {
        public String label() {
            return numerator.label() + "/" + denominator.label();
        }
    }

    /** The timing of {@code method} on {@code suite} at B = {@code batch} and {@code threads} threads, if timed. */
    public Optional<Timing> timing(String suite, BenchMethod method, long batch, int threads) {
        return row(suite, method, batch, threads).map(Row::timing);
    }

    /** The row of {@code method} on {@code suite} at B = {@code batch} and {@code threads} threads, if any. */
    public Optional<Row> row(String suite, BenchMethod method, long batch, int threads) {
        return rows.stream().filter(r -> r.suite().equals(suite) && r.method() == method && r.batch() == batch
                && r.threads() == threads).findFirst();
    }

    /** The median of that timing in ms, if timed. */
    public OptionalDouble median(String suite, BenchMethod method, long batch, int threads) {
        return timing(suite, method, batch, threads).map(t -> OptionalDouble.of(t.medianMs()))
                .orElse(OptionalDouble.empty());
    }

    /** The ratio of two medians at the same model, B and threads, if both were timed. */
    public OptionalDouble ratio(String suite, long batch, int threads, Ratio ratio) {
        OptionalDouble num = median(suite, ratio.numerator(), batch, threads);
        OptionalDouble den = median(suite, ratio.denominator(), batch, threads);
        return num.isPresent() && den.isPresent() && den.getAsDouble() > 0
                ? OptionalDouble.of(num.getAsDouble() / den.getAsDouble()) : OptionalDouble.empty();
    }

    /** The models timed, in suite order. */
    public List<String> suites() {
        return distinct(Row::suite);
    }

    /** The batch sizes timed, ascending. */
    public List<Long> batches() {
        return distinct(Row::batch).stream().sorted().toList();
    }

    /** The thread counts timed, ascending. */
    public List<Integer> threadCounts() {
        return distinct(Row::threads).stream().sorted().toList();
    }

    /** The methods timed, in {@link BenchMethod} order. */
    public List<BenchMethod> methods() {
        return distinct(Row::method).stream().sorted().toList();
    }

    /** The ratios whose both methods were timed. */
    public List<Ratio> ratios() {
        List<BenchMethod> methods = methods();
        return RATIOS.stream().filter(r -> methods.contains(r.numerator()) && methods.contains(r.denominator()))
                .toList();
    }

    private <T> List<T> distinct(Function<Row, T> key) {
        return rows.stream().map(key).distinct().toList();
    }

    private static int suiteIndex(String suite) {
        int k = Suite.NAMES.indexOf(suite);
        return k < 0 ? Suite.NAMES.size() : k;
    }

    /**
     * The JSON {@code --json} writes: {@code schema_version, device, models, statistic, unit, jmh,
     * suites, methods, batches, threads}, then {@code results} (one object per model, method, B and
     * threads: {@code median_ms, score_ms, score_error_ms, samples}) and {@code ratios} (one object
     * per model, B, threads and ratio). Non-finite numbers (an error JMH could not estimate) are null.
     */
    public String toJson() {
        try {
            return JSON.writeValueAsString(toTree());
        } catch (IOException e) {
            throw new IllegalStateException("a bench result always serializes", e);
        }
    }

    public void writeJson(Path file) {
        try {
            JSON.writeValue(file.toFile(), toTree());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the bench result to " + file, e);
        }
    }

    /** Writes {@link BenchPage}'s HTML page (ms vs B per method, one chart per model) to {@code file}. */
    public void writeHtml(Path file) {
        HtmlPages.write(file, BenchPage.render(this), "bench page");
    }

    private ObjectNode toTree() {
        ObjectNode root = JSON.createObjectNode();
        root.put("schema_version", SCHEMA_VERSION);
        root.put("device", device);
        root.put("models", models);
        root.put("statistic", "median");
        root.put("unit", "ms");
        if (engine == null) {
            root.putNull("engine");
        } else {
            root.put("engine", engine);
        }
        root.put("memory", "peak_extra_bytes: the peak resident set over one call minus the resident set before it, "
                + "after returning free native memory to the system; measured once per model, method and B in the "
                + "bench's own JVM at the first thread count");
        ObjectNode jmh = root.putObject("jmh");
        jmh.put("mode", "sample_time");
        jmh.put("warmups", settings.warmups());
        jmh.put("iterations", settings.iterations());
        jmh.put("iteration_ms", settings.iterationMillis());
        jmh.put("forks", settings.forks());
        root.put("sketch_precision", settings.sketchPrecision());
        suites().forEach(root.putArray("suites")::add);
        ArrayNode methods = root.putArray("methods");
        methods().forEach(m -> methods.add(m.label()));
        batches().forEach(root.putArray("batches")::add);
        threadCounts().forEach(root.putArray("threads")::add);
        ArrayNode results = root.putArray("results");
        for (Row r : rows) {
            ObjectNode node = results.addObject();
            node.put("suite", r.suite());
            node.put("method", r.method().label());
            node.put("batch", r.batch());
            node.put("threads", r.threads());
            Timing t = r.timing();
            putFinite(node, "median_ms", t == null ? Double.NaN : t.medianMs());
            putFinite(node, "score_ms", t == null ? Double.NaN : t.scoreMs());
            putFinite(node, "score_error_ms", t == null ? Double.NaN : t.scoreErrorMs());
            node.put("samples", t == null ? 0 : t.samples());
            Verification v = r.verification();
            if (v == null) {
                node.putNull("verified");
            } else {
                node.put("verified", v.passed());
                node.put("verification", v.status().name().toLowerCase(Locale.ROOT));
                if (v.detail() != null) {
                    node.put("failure", v.detail());
                }
            }
            if (r.peakExtraBytes() == null) {
                node.putNull("peak_extra_bytes");
            } else {
                node.put("peak_extra_bytes", r.peakExtraBytes());
            }
        }
        ArrayNode ratios = root.putArray("ratios");
        forEachSetting((suite, batch, threads) -> {
            for (Ratio ratio : ratios()) {
                ratio(suite, batch, threads, ratio).ifPresent(v -> {
                    ObjectNode node = ratios.addObject();
                    node.put("suite", suite);
                    node.put("batch", batch);
                    node.put("threads", threads);
                    node.put("ratio", ratio.label());
                    node.put("value", v);
                });
            }
        });
        return root;
    }

    private static void putFinite(ObjectNode node, String field, double value) {
        if (Double.isFinite(value)) {
            node.put(field, value);
        } else {
            node.putNull(field);
        }
    }

    private interface Setting {
        void accept(String suite, long batch, int threads);
    }

    /** Every (model, B, threads) that has a row, in row order. */
    private void forEachSetting(Setting action) {
        rows.stream().map(r -> List.of(r.suite(), r.batch(), r.threads())).distinct()
                .forEach(k -> action.accept((String) k.get(0), (Long) k.get(1), (Integer) k.get(2)));
    }

    /** The summary line, the medians (model × B × threads rows, a column per method), then the ratios. */
    public String table() {
        List<String> medianHeader = new ArrayList<>(List.of("suite", "B", "threads"));
        methods().forEach(m -> medianHeader.add(label(m)));
        List<String> ratioHeader = new ArrayList<>(List.of("suite", "B", "threads"));
        ratios().forEach(r -> ratioHeader.add(label(r.numerator()) + "/" + label(r.denominator())));
        List<List<String>> memoryRows = new ArrayList<>();
        List<List<String>> medianRows = new ArrayList<>();
        List<List<String>> ratioRows = new ArrayList<>();
        forEachSetting((suite, batch, threads) -> {
            List<String> key = List.of(suite, Long.toString(batch), Integer.toString(threads));
            List<String> m = new ArrayList<>(key);
            methods().forEach(method -> m.add(row(suite, method, batch, threads).map(Row::medianCell).orElse("-")));
            medianRows.add(m);
            List<String> mem = new ArrayList<>(key);
            methods().forEach(method -> mem.add(row(suite, method, batch, threads).map(Row::peakExtraBytes)
                    .map(bytes -> format(OptionalDouble.of(bytes / MIB), "%s")).orElse("-")));
            memoryRows.add(mem);
            List<String> r = new ArrayList<>(key);
            ratios().forEach(ratio -> r.add(format(ratio(suite, batch, threads, ratio), "%sx")));
            ratioRows.add(r);
        });
        StringBuilder out = new StringBuilder(summary()).append('\n').append(textTable(medianHeader, medianRows));
        if (!ratios().isEmpty()) {
            out.append('\n').append(textTable(ratioHeader, ratioRows));
        }
        if (rows.stream().anyMatch(r -> r.peakExtraBytes() != null)) {
            out.append('\n').append(MEMORY_CAPTION).append('\n').append(textTable(medianHeader, memoryRows));
        }
        for (Row r : rows) {
            Verification v = r.verification();
            if (v != null && !v.passed()) {
                out.append(String.format(Locale.ROOT, "%s: %s on %s at B = %d%s: %s%n", v.status().mark(),
                        label(r.method()), r.suite(), r.batch(), threadCounts().size() > 1 ? ", " + r.threads()
                                + " threads" : "", v.detail()));
            }
        }
        if (rows.stream().anyMatch(r -> r.verification() != null && r.verification().status() == Verification.Status.WRONG)) {
            out.append("a WRONG sampler's timing is of per-sample gradients that differ from the reference: "
                    + "fix the sampler before reading it\n");
        }
        return out.toString();
    }

    /** The line above the memory table. */
    public static final String MEMORY_CAPTION = "peak extra memory of one call (MiB above the resident set before it):";

    private static String textTable(List<String> header, List<List<String>> rows) {
        Column[] columns = new Column[header.size()];
        for (int c = 0; c < columns.length; c++) {
            int column = c;
            int longest = rows.stream().mapToInt(r -> r.get(column).length()).max().orElse(0);
            int width = Math.max(c < 3 ? 8 : 12, Math.max(header.get(c).length(), longest) + 3);
            columns[c] = new Column(width, 1, Overflow.WRAP);
        }
        TextTable table = TextTable.forColumns(Ansi.OFF, columns);
        table.addRowValues(header.toArray(String[]::new));
        rows.forEach(r -> table.addRowValues(r.toArray(String[]::new)));
        return table.toString();
    }

    /** One line: what ran where, and how it was measured. */
    public String summary() {
        return String.format(Locale.ROOT, "bench: B = %s, threads %s, device %s, models %s%s; JMH sample time, "
                        + "%d fork%s, %d x %d ms warm-up, %d x %d ms measured; median (p50) ms per call; sketch "
                        + "projections in %s",
                join(batches()), join(threadCounts()), device,
                models.equals(BUILT_IN) ? "built in Java (C++ frontend)" : "from " + models,
                engine == null ? "" : ", engine " + engine + " verified against the reference at every B",
                settings.forks(), settings.forks() == 1 ? "" : "s", settings.warmups(), settings.iterationMillis(),
                settings.iterations(), settings.iterationMillis(), settings.sketchPrecision());
    }

    private static String join(List<?> values) {
        return String.join(",", values.stream().map(String::valueOf).toList());
    }

    static String format(OptionalDouble v, String pattern) {
        if (v.isEmpty()) {
            return "-";
        }
        double x = v.getAsDouble();
        String digits = x >= 100 ? "%.1f" : x >= 10 ? "%.2f" : x >= 1 ? "%.3f" : "%.4f";
        return String.format(Locale.ROOT, pattern, String.format(Locale.ROOT, digits, x));
    }
}
