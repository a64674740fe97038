package dev.psg4j.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;

import picocli.CommandLine.Help.Ansi;
import picocli.CommandLine.Help.Column;
import picocli.CommandLine.Help.Column.Overflow;
import picocli.CommandLine.Help.TextTable;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalDouble;

/**
 * What {@code psg4j bench} measured: per suite model and method the median (p50) time of one call
 * in milliseconds, over all of JMH's measured samples, and the ratios between methods.
 *
 * @param batch      B, the samples per batch
 * @param threads    LibTorch's intra-op threads the benchmarks ran with
 * @param device     where they ran ("cpu")
 * @param models     "java" for the suite built in Java with seeded weights, else the folder whose exported weights and inputs it took
 * @param settings   how JMH ran
 * @param timings    suite → method → timing, in the suite's and the methods' order
 */
public record BenchResult(long batch, int threads, String device, String models, Settings settings,
                          Map<String, Map<BenchMethod, Timing>> timings) {

    /** The {@link #models} value for the suite built in Java. */
    public static final String BUILT_IN = "java";

    /** The ratios reported, numerator over denominator, when both were timed. */
    public static final List<Ratio> RATIOS = List.of(
            new Ratio(BenchMethod.VMAP, BenchMethod.BACKWARD),
            new Ratio(BenchMethod.MICROBATCH, BenchMethod.VMAP),
            new Ratio(BenchMethod.CHECK, BenchMethod.VMAP),
            new Ratio(BenchMethod.PROBE, BenchMethod.BACKWARD));

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public BenchResult {
        Objects.requireNonNull(settings, "settings");
        Map<String, Map<BenchMethod, Timing>> copy = new LinkedHashMap<>();
        timings.forEach((suite, byMethod) -> copy.put(suite, java.util.Collections.unmodifiableMap(
                new LinkedHashMap<>(byMethod))));
        timings = java.util.Collections.unmodifiableMap(copy);
    }

    /** How JMH ran: sample-time mode, per benchmark {@code forks} JVMs of warm-up then measured iterations. */
    public record Settings(int warmups, int iterations, long iterationMillis, int forks) {
    }

    /** One method on one model: the median time of a call (ms) over {@code samples} timed calls. */
    public record Timing(double medianMs, long samples) {
    }

    /** {@code numerator / denominator}, e.g. vmap/backward. */
    public record Ratio(BenchMethod numerator, BenchMethod denominator) {
        public String label() {
            return numerator.label() + "/" + denominator.label();
        }
    }

    /** The median of {@code method} on {@code suite} in ms, if it was timed. */
    public OptionalDouble median(String suite, BenchMethod method) {
        Timing t = timings.getOrDefault(suite, Map.of()).get(method);
        return t == null ? OptionalDouble.empty() : OptionalDouble.of(t.medianMs());
    }

    /** The ratio of two medians on {@code suite}, if both were timed. */
    public OptionalDouble ratio(String suite, Ratio ratio) {
        OptionalDouble num = median(suite, ratio.numerator());
        OptionalDouble den = median(suite, ratio.denominator());
        return num.isPresent() && den.isPresent() && den.getAsDouble() > 0
                ? OptionalDouble.of(num.getAsDouble() / den.getAsDouble()) : OptionalDouble.empty();
    }

    /** The methods timed, in {@link BenchMethod} order. */
    public List<BenchMethod> methods() {
        List<BenchMethod> out = new ArrayList<>();
        for (BenchMethod m : BenchMethod.values()) {
            if (timings.values().stream().anyMatch(byMethod -> byMethod.containsKey(m))) {
                out.add(m);
            }
        }
        return out;
    }

    /** The ratios whose both methods were timed. */
    public List<Ratio> ratios() {
        List<BenchMethod> methods = methods();
        return RATIOS.stream().filter(r -> methods.contains(r.numerator()) && methods.contains(r.denominator()))
                .toList();
    }

    /**
     * The JSON {@code --json} writes: {@code batch, threads, device, models, statistic, unit, jmh}
     * and per suite {@code {median_ms: {method: ms}, samples: {method: n}, ratios: {"vmap/backward": r}}}.
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

    private ObjectNode toTree() {
        ObjectNode root = JSON.createObjectNode();
        root.put("batch", batch);
        root.put("threads", threads);
        root.put("device", device);
        root.put("models", models);
        root.put("statistic", "median");
        root.put("unit", "ms");
        ObjectNode jmh = root.putObject("jmh");
        jmh.put("mode", "sample_time");
        jmh.put("warmups", settings.warmups());
        jmh.put("iterations", settings.iterations());
        jmh.put("iteration_ms", settings.iterationMillis());
        jmh.put("forks", settings.forks());
        ObjectNode suites = root.putObject("suites");
        timings.forEach((suite, byMethod) -> {
            ObjectNode node = suites.putObject(suite);
            ObjectNode medians = node.putObject("median_ms");
            ObjectNode samples = node.putObject("samples");
            byMethod.forEach((method, t) -> {
                medians.put(method.label(), t.medianMs());
                samples.put(method.label(), t.samples());
            });
            ObjectNode ratios = node.putObject("ratios");
            for (Ratio r : ratios()) {
                ratio(suite, r).ifPresent(v -> ratios.put(r.label(), v));
            }
        });
        return root;
    }

    /** The header line and the table: suite × method medians (ms), then the ratios. */
    public String table() {
        List<BenchMethod> methods = methods();
        List<Ratio> ratios = ratios();
        List<String> header = new ArrayList<>(List.of("suite"));
        methods.forEach(m -> header.add(m.label()));
        ratios.forEach(r -> header.add(r.label()));
        Column[] columns = new Column[header.size()];
        columns[0] = new Column(7, 1, Overflow.WRAP);
        for (int c = 1; c < columns.length; c++) {
            columns[c] = new Column(Math.max(12, header.get(c).length() + 3), 1, Overflow.WRAP);
        }
        TextTable table = TextTable.forColumns(Ansi.OFF, columns);
        table.addRowValues(header.toArray(String[]::new));
        for (String suite : timings.keySet()) {
            List<String> row = new ArrayList<>(List.of(suite));
            methods.forEach(m -> row.add(format(median(suite, m), "%s")));
            ratios.forEach(r -> row.add(format(ratio(suite, r), "%sx")));
            table.addRowValues(row.toArray(String[]::new));
        }
        return summary() + "\n" + table;
    }

    /** One line: what ran where, and how it was measured. */
    public String summary() {
        return String.format(Locale.ROOT, "bench: B = %d, threads %d, device %s, models %s; JMH sample time, "
                        + "%d fork%s, %d x %d ms warm-up, %d x %d ms measured; median (p50) ms per call",
                batch, threads, device, models.equals(BUILT_IN) ? "built in Java (C++ frontend)" : "from " + models,
                settings.forks(), settings.forks() == 1 ? "" : "s", settings.warmups(), settings.iterationMillis(),
                settings.iterations(), settings.iterationMillis());
    }

    private static String format(OptionalDouble v, String pattern) {
        if (v.isEmpty()) {
            return "-";
        }
        double x = v.getAsDouble();
        String digits = x >= 100 ? "%.1f" : x >= 10 ? "%.2f" : x >= 1 ? "%.3f" : "%.4f";
        return String.format(Locale.ROOT, pattern, String.format(Locale.ROOT, digits, x));
    }
}
