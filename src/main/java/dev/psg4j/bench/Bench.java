package dev.psg4j.bench;

import dev.psg4j.BadInputException;
import dev.psg4j.Psg4jException;
import dev.psg4j.check.CheckMode;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Reduction;
import dev.psg4j.check.Threads;
import dev.psg4j.engine.Engines;
import dev.psg4j.report.CheckReport;

import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.format.OutputFormatFactory;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.runner.options.VerboseMode;
import org.openjdk.jmh.util.Statistics;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Runs the benchmark suite with JMH (sample-time mode: every call timed, the median of all measured
 * calls reported), one benchmark per model, method, batch size and thread count of the sweep.
 * Before JMH starts, every model is built or loaded once per batch size here and the vmap engine
 * checked on it, so bad input fails fast and no wrong engine is timed.
 *
 * <pre>{@code
 * BenchResult result = Bench.builder().suites(Suite.NAMES).batches(List.of(32L, 256L)).threads(1).run();
 * System.out.print(result.table());
 * result.writeHtml(Path.of("bench.html"));
 * }</pre>
 *
 * <p>Forked JMH runs ({@code forks > 0}, the default) start a JVM per benchmark with this JVM's
 * class path and arguments, so they work from {@code java -jar psg4j.jar} (its manifest lists the
 * dependency jars) as from a test or an IDE.
 */
public final class Bench {
    /** B when none is given and the models are built in Java. */
    public static final long DEFAULT_BATCH = 32;

    private Bench() {
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Options of a run; every one has a default. */
    public static final class Builder {
        private List<String> suites = Suite.NAMES;
        private List<BenchMethod> methods = List.of(BenchMethod.values());
        private List<Long> batches = List.of();
        private List<Integer> threads = List.of(1);
        private Path models;
        private int warmups = 3;
        private int iterations = 5;
        private long iterationMillis = 400;
        private int forks = 1;
        private OutputStream log;
        private PrintStream progress;

        private Builder() {
        }

        /** Which suite models, by name (see {@link Suite#NAMES}); default all. */
        public Builder suites(List<String> names) {
            if (names.isEmpty()) {
                throw new BadInputException("give at least one suite");
            }
            names.forEach(Suite::named);
            this.suites = List.copyOf(names);
            return this;
        }

        /** Which methods; default all. */
        public Builder methods(List<BenchMethod> methods) {
            if (methods.isEmpty()) {
                throw new BadInputException("give at least one method");
            }
            this.methods = methods.stream().distinct().toList();
            return this;
        }

        /** One batch size B; null for the default (see {@link #batches}). */
        public Builder batch(Long batch) {
            return batches(batch == null ? List.of() : List.of(batch));
        }

        /**
         * The batch sizes to sweep, each timed separately: default {@value Bench#DEFAULT_BATCH} for the
         * models built in Java, the exported inputs' own batch with {@link #models}; empty for the default.
         */
        public Builder batches(List<Long> batches) {
            for (Long b : batches) {
                if (b == null || b < 1) {
                    throw new BadInputException("a batch size must be at least 1, got " + b);
                }
            }
            this.batches = batches.stream().distinct().sorted().toList();
            return this;
        }

        /** LibTorch's intra-op threads in the benchmark JVMs; default 1. */
        public Builder threads(int threads) {
            return threads(List.of(threads));
        }

        /** The thread counts to sweep, each timed separately; default 1. */
        public Builder threads(List<Integer> threads) {
            if (threads.isEmpty()) {
                throw new BadInputException("give at least one thread count");
            }
            threads.forEach(t -> Threads.checked(BadInputException.requireNonNull(t, "threads", "a count >= 1"),
                    "threads"));
            this.threads = threads.stream().distinct().sorted().toList();
            return this;
        }

        /** Give the Java-built models the weights and inputs exported to {@code dir} (identical to Python's). */
        public Builder models(Path dir) {
            this.models = dir;
            return this;
        }

        /** Warm-up iterations per benchmark; default 3. */
        public Builder warmups(int warmups) {
            if (warmups < 0) {
                throw new BadInputException("warm-up iterations must be 0 or more, got " + warmups);
            }
            this.warmups = warmups;
            return this;
        }

        /** Measured iterations per benchmark; default 5. */
        public Builder iterations(int iterations) {
            if (iterations < 1) {
                throw new BadInputException("measured iterations must be at least 1, got " + iterations);
            }
            this.iterations = iterations;
            return this;
        }

        /** How long one iteration calls the method over and over (at least once); default 400 ms. */
        public Builder iterationMillis(long millis) {
            if (millis < 1) {
                throw new BadInputException("the iteration time must be at least 1 ms, got " + millis);
            }
            this.iterationMillis = millis;
            return this;
        }

        /** JVMs forked per benchmark; 0 runs in this JVM (quicker, noisier); default 1. */
        public Builder forks(int forks) {
            if (forks < 0) {
                throw new BadInputException("forks must be 0 or more, got " + forks);
            }
            this.forks = forks;
            return this;
        }

        /** Where JMH's own progress log goes; null (the default) keeps it quiet. */
        public Builder log(OutputStream log) {
            this.log = log;
            return this;
        }

        /**
         * Where to draw a progress bar over the whole run (carriage returns: give a terminal's
         * stream); null (the default) draws none.
         */
        public Builder progress(PrintStream progress) {
            this.progress = progress;
            return this;
        }

        public BenchResult run() {
            long benchmarks = (long) suites.size() * methods.size() * threads.size()
                    * Math.max(1, batches.size());
            long iterationsEach = (long) Math.max(1, forks) * (warmups + iterations);
            long preflights = (long) suites.size() * Math.max(1, batches.size());
            try (BenchProgress bar = progress == null ? BenchProgress.NONE
                    : BenchProgress.on(progress, preflights + benchmarks * iterationsEach)) {
                List<Long> sweep = preflight(bar);
                Collection<RunResult> results = runJmh(options(sweep), bar);
                return new BenchResult("cpu", models == null ? BenchResult.BUILT_IN : models.toString(),
                        new BenchResult.Settings(warmups, iterations, iterationMillis, forks), rows(results, sweep));
            }
        }

        private Collection<RunResult> runJmh(Options options, BenchProgress bar) {
            ByteArrayOutputStream captured = new ByteArrayOutputStream();
            PrintStream sink = new PrintStream(new KeepOpen(captured, log), true, StandardCharsets.UTF_8);
            try {
                return new Runner(options, bar.counting(OutputFormatFactory.createFormatInstance(sink,
                        VerboseMode.NORMAL))).run();
            } catch (RunnerException | RuntimeException e) {
                throw new BenchException("the benchmarks failed: " + firstError(e, captured)
                        + (log == null ? " (--verbose shows JMH's log)" : ""), e);
            } finally {
                sink.flush();
            }
        }

        /**
         * Builds or loads every model once per batch size and checks the vmap engine on it (sum
         * reduction): bad files fail here with a clear message, before any JVM is forked. Returns the
         * batch sizes to sweep (with {@link #models} and none given: the exported inputs' batch).
         */
        private List<Long> preflight(BenchProgress bar) {
            List<Long> sweep = batches.isEmpty() && models == null ? List.of(DEFAULT_BATCH) : batches;
            if (sweep.isEmpty()) {
                return List.of(exportedBatch(bar));
            }
            for (long b : sweep) {
                for (String name : suites) {
                    try (Suite suite = models == null ? Suite.build(name, b) : Suite.load(name, models, b)) {
                        checkVmapEngine(suite);
                    }
                    bar.step("checking " + name + " B=" + b);
                }
            }
            return sweep;
        }

        /** Checks every model on the single-batch export's inputs; returns their common batch size. */
        private long exportedBatch(BenchProgress bar) {
            Long found = null;
            for (String name : suites) {
                try (Suite suite = Suite.load(name, models)) {
                    long b = suite.batchSize();
                    if (found != null && b != found) {
                        throw new BadInputException("the inputs in " + models + " have different batch sizes (" + found
                                + " and " + b + " in " + name + "): export them together with bench_python.py --export");
                    }
                    found = b;
                    checkVmapEngine(suite);
                }
                bar.step("checking " + name);
            }
            return found;
        }

        /**
         * One exact check of the vmap engine (sum reduction, probes included): no wrong engine is
         * timed; with check-sketch in the run also one sketch check, which must agree (a false alarm
         * on the clean suite is a bug, not a timing).
         */
        private void checkVmapEngine(Suite suite) {
            checkVmapEngine(suite, CheckMode.EXACT);
            if (methods.contains(BenchMethod.CHECK_SKETCH)) {
                checkVmapEngine(suite, CheckMode.SKETCH);
            }
        }

        private void checkVmapEngine(Suite suite, CheckMode mode) {
            String name = suite.name();
            try (PerSampleCheck check = PerSampleCheck.builder().model(suite.model()).inputs(suite.input())
                    .reduction(Reduction.SUM).mode(mode).threads(threads.get(0)).build()) {
                CheckReport report;
                try {
                    report = check.run(Engines.vmap());
                } catch (BadInputException e) {
                    throw e;
                } catch (Psg4jException e) {
                    throw new BenchException("the vmap engine failed on " + name + " at B = " + suite.batchSize()
                            + (models == null ? "" : " (" + Suite.modelFile(models, name) + ")")
                            + ": " + tellingLine(e.getMessage()), e);
                }
                if (!report.passed()) {
                    throw new BenchException("the vmap engine's per-sample gradients differ from the reference on "
                            + name + " at B = " + suite.batchSize() + " in " + mode.label() + " mode (" + why(report)
                            + "); not timing a wrong engine", null);
                }
            }
        }

        private Options options(List<Long> sweep) {
            String include = Pattern.quote(SuiteBenchmark.class.getName()) + "\\.("
                    + methods.stream().map(BenchMethod::benchmarkName).collect(Collectors.joining("|")) + ")$";
            return new OptionsBuilder()
                    .include(include)
                    .param("suite", suites.toArray(String[]::new))
                    .param("batch", sweep.stream().map(String::valueOf).toArray(String[]::new))
                    .param("threads", threads.stream().map(String::valueOf).toArray(String[]::new))
                    .param("models", models == null ? SuiteBenchmark.BUILT_IN : models.toAbsolutePath().toString())
                    .mode(Mode.SampleTime)
                    .timeUnit(TimeUnit.MILLISECONDS)
                    .warmupIterations(warmups)
                    .warmupTime(TimeValue.milliseconds(iterationMillis))
                    .measurementIterations(iterations)
                    .measurementTime(TimeValue.milliseconds(iterationMillis))
                    .forks(forks)
                    .threads(1)
                    .shouldFailOnError(true)
                    .verbosity(VerboseMode.NORMAL)
                    .build();
        }

        /** One row per model, method, B and threads; every one must have been measured. */
        private List<BenchResult.Row> rows(Collection<RunResult> results, List<Long> sweep) {
            Map<List<Object>, BenchResult.Row> found = new LinkedHashMap<>();
            for (RunResult r : results == null ? List.<RunResult>of() : results) {
                BenchResult.Row row = row(r);
                found.put(List.of(row.suite(), row.method(), row.batch(), row.threads()), row);
            }
            List<BenchResult.Row> rows = new ArrayList<>();
            List<String> missing = new ArrayList<>();
            for (String suite : suites) {
                for (long b : sweep) {
                    for (int t : threads) {
                        for (BenchMethod method : methods) {
                            BenchResult.Row row = found.get(List.of(suite, method, b, t));
                            if (row == null || row.timing().samples() == 0) {
                                missing.add(suite + "/" + method.label() + " B=" + b + " threads=" + t);
                            } else {
                                rows.add(row);
                            }
                        }
                    }
                }
            }
            if (!missing.isEmpty()) {
                throw new BenchException("JMH returned no measurements for " + String.join(", ", missing)
                        + " (--verbose shows JMH's log)", null);
            }
            return rows;
        }

        private static BenchResult.Row row(RunResult r) {
            BenchmarkParams params = r.getParams();
            String benchmark = params.getBenchmark();
            BenchMethod method = BenchMethod.ofBenchmark(benchmark.substring(benchmark.lastIndexOf('.') + 1));
            Result<?> primary = r.getPrimaryResult();
            Statistics stats = primary.getStatistics();
            return new BenchResult.Row(params.getParam("suite"), method, Long.parseLong(params.getParam("batch")),
                    Integer.parseInt(params.getParam("threads")), new BenchResult.Timing(stats.getPercentile(50),
                    primary.getScore(), primary.getScoreError(), stats.getN()));
        }
    }

    /** A failed report's first failure, else its first diagnosis (the probes stopped the check). */
    private static String why(CheckReport report) {
        if (!report.failures().isEmpty()) {
            return report.failures().get(0).message();
        }
        return report.diagnoses().isEmpty() ? "no failure recorded" : report.diagnoses().get(0).message();
    }

    /** The benchmarks could not run, or ran and failed; the message says which and why. */
    public static final class BenchException extends Psg4jException {
        public BenchException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * The most telling line of a failed run, from JMH's log (a forked benchmark's error is only
     * there): which benchmark, and its exception or the native frame its JVM crashed in; else the
     * exception's own message.
     */
    private static String firstError(Exception e, ByteArrayOutputStream captured) {
        String method = null;
        String suite = null;
        String[] lines = captured.toString(StandardCharsets.UTF_8).split("\\R");
        for (int k = 0; k < lines.length; k++) {
            String s = lines[k].strip();
            if (s.startsWith("# Benchmark: ")) {
                method = s.substring(s.lastIndexOf('.') + 1);
            } else if (s.startsWith("# Parameters: ")) {
                Matcher m = Pattern.compile("suite = (\\w+)").matcher(s);
                suite = m.find() ? m.group(1) : null;
            }
            String where = method == null ? "" : (suite == null ? "" : suite + "/") + method + ": ";
            if (s.matches("^[\\w.$]+(Exception|Error)(:.*)?$")) {
                return where + s;
            }
            if (s.contains("A fatal error has been detected by the Java Runtime Environment")) {
                String frame = "";
                for (int j = k + 1; j < lines.length && j < k + 20; j++) {
                    if (lines[j].strip().equals("# Problematic frame:") && j + 1 < lines.length) {
                        frame = " in " + lines[j + 1].replaceFirst("^#\\s*", "").strip();
                        break;
                    }
                }
                return where + "the benchmark JVM crashed" + frame;
            }
        }
        String message = e.getMessage() == null ? e.toString() : e.getMessage().strip();
        int newline = message.indexOf('\n');
        return newline < 0 ? message : message.substring(0, newline);
    }

    /** The error line of a multi-line LibTorch message (a TorchScript traceback ends with it), else its first line. */
    static String tellingLine(String message) {
        if (message == null) {
            return "(no message)";
        }
        String first = null;
        String error = null;
        for (String line : message.split("\\R")) {
            String s = line.strip();
            if (first == null && !s.isEmpty()) {
                first = s;
            }
            if (s.matches("^[\\w.$]*(Error|Exception): .*")) {
                error = s;
            }
        }
        return error != null ? error : first != null ? first : "(no message)";
    }

    /** JMH's output: kept for error messages, copied to the log if there is one, never closed by JMH. */
    private static final class KeepOpen extends OutputStream {
        private final OutputStream captured;
        private final OutputStream log;

        KeepOpen(OutputStream captured, OutputStream log) {
            this.captured = captured;
            this.log = log;
        }

        @Override
        public void write(int b) throws IOException {
            captured.write(b);
            if (log != null) {
                log.write(b);
            }
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            captured.write(b, off, len);
            if (log != null) {
                log.write(b, off, len);
            }
        }

        @Override
        public void flush() throws IOException {
            if (log != null) {
                log.flush();
            }
        }

        @Override
        public void close() throws IOException {
            flush();
        }
    }
}
