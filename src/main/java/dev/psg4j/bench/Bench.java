package dev.psg4j.bench;

import dev.psg4j.BadInputException;
import dev.psg4j.Psg4jException;
import dev.psg4j.UnsupportedModelException;
import dev.psg4j.check.CheckMode;
import dev.psg4j.check.Devices;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Reduction;
import dev.psg4j.check.SketchPrecision;
import dev.psg4j.check.Threads;
import dev.psg4j.engine.Engines;
import dev.psg4j.engine.GradSamplers;
import dev.psg4j.internal.SystemMemory;
import dev.psg4j.report.CheckReport;

import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.format.OutputFormatFactory;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
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
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Runs the benchmark suite (or the user's model, {@link Builder#model}) with JMH (sample-time mode:
 * every call timed, the median of all measured calls reported), one benchmark per model, method,
 * batch size and thread count of the sweep, one JMH run per model and batch size. Before each, the
 * model is set up here at that B, each timed sampler (vmap, the {@link Builder#engine} one) checked
 * once against the microbatch reference ({@link Verification}: a wrong one is timed and marked, one
 * that refuses the model is not timed) and every method's peak extra memory measured
 * ({@link PeakMemory}), so bad input fails fast, before any JVM is forked.
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
        private UserModel user;
        private String device = Devices.CPU;
        private SketchPrecision sketchPrecision = SketchPrecision.DOUBLE;
        private EngineSpec engine;
        private boolean methodsGiven;
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
            this.methodsGiven = true;
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

        /**
         * Where the models, their batches and every timed call run: "cpu" (the default), "cuda" or
         * "cuda:N". On CUDA each timed call ends with a device synchronization (JMH measures host
         * time; CUDA runs asynchronously) and the peak extra memory is the CUDA caching allocator's
         * peak over the call, not the process's resident set. A bad device is a BadInputException.
         */
        public Builder device(String device) {
            this.device = Devices.canonical(device);
            return this;
        }

        /** The projection precision of the sketch methods' checks; default {@link SketchPrecision#DOUBLE}. */
        public Builder sketchPrecision(SketchPrecision precision) {
            this.sketchPrecision = BadInputException.requireNonNull(precision, "sketch precision",
                    "SketchPrecision.DOUBLE or SketchPrecision.FLOAT_FIRST");
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

        /** Time the user's own model instead of the suite (see {@link UserModel}); null for the suite. */
        public Builder model(UserModel user) {
            this.user = user;
            return this;
        }

        /**
         * Time this grad sampler too, as the {@link BenchMethod#ENGINE} method (added to the default
         * methods); null for none.
         */
        public Builder engine(EngineSpec engine) {
            this.engine = engine;
            return this;
        }

        public BenchResult run() {
            List<BenchMethod> timed = timedMethods();
            if (user != null && models != null) {
                throw new BadInputException("--models gives the suite exported weights; --model times your own model: "
                        + "give one of them");
            }
            if (engine != null) {
                engine.requireValid();
            }
            List<String> names = user == null ? suites : List.of(user.name());
            List<Long> sweep = sweep();
            long benchmarks = (long) names.size() * timed.size() * threads.size() * sweep.size();
            long iterationsEach = (long) Math.max(1, forks) * (warmups + iterations);
            long preflights = (long) names.size() * sweep.size();
            boolean estimating = device.equals(Devices.CPU) && sweep.get(sweep.size() - 1) > MemoryEstimate.LARGE;
            try (BenchProgress bar = progress == null ? BenchProgress.NONE
                    : BenchProgress.on(progress, (estimating ? names.size() : 0) + preflights + benchmarks * iterationsEach)) {
                if (estimating) {
                    for (String name : names) {
                        bar.status("estimating the memory of " + name);
                        requireMemory(name, sweep.get(sweep.size() - 1), timed);
                        bar.step("estimated the memory of " + name);
                    }
                }
                List<BenchResult.Row> rows = new ArrayList<>();
                for (long b : sweep) {
                    for (String name : names) {
                        bar.status("checking " + name + " B=" + b);
                        Preflight checked = preflight(name, b, timed);
                        bar.step("checking " + name + " B=" + b);
                        List<BenchMethod> runnable = new ArrayList<>();
                        for (BenchMethod m : timed) {
                            Verification v = checked.verdicts().get(m);
                            if (v == null || v.status().timed()) {
                                runnable.add(m);
                                continue;
                            }
                            for (int t : threads) {
                                rows.add(new BenchResult.Row(name, m, b, t, null, v, null));
                                for (long k = 0; k < iterationsEach; k++) {
                                    bar.step("skipping " + name + "/" + m.label() + " B=" + b);
                                }
                            }
                        }
                        if (!runnable.isEmpty()) {
                            rows.addAll(rows(runJmh(options(name, b, runnable), bar), name, b, runnable, checked));
                        }
                    }
                }
                return new BenchResult(device, user != null ? user.model().toString()
                        : models == null ? BenchResult.BUILT_IN : models.toString(),
                        new BenchResult.Settings(warmups, iterations, iterationMillis, forks, sketchPrecision.label()),
                        engine == null ? null : engine.name(), rows);
            }
        }

        /** The methods to time: those given, else all, the engine's only with an engine. */
        private List<BenchMethod> timedMethods() {
            if (!methodsGiven) {
                return List.of(BenchMethod.values()).stream()
                        .filter(m -> m != BenchMethod.ENGINE || engine != null).toList();
            }
            if (methods.contains(BenchMethod.ENGINE) && engine == null) {
                throw new BadInputException("the engine method times the sampler --engine names: give --engine NAME "
                        + "(and --plugin JAR for a plug-in's), or drop engine from --methods");
            }
            return methods;
        }

        /**
         * The batch sizes to sweep: those given (each at most the user model's input batch), else
         * {@value Bench#DEFAULT_BATCH} for the built suite, the exported inputs' batch with
         * {@link #models}, the whole input with {@link #model(UserModel)}.
         */
        private List<Long> sweep() {
            if (user != null) {
                long samples = user.samples();
                batches.forEach(b -> user.requireSamples(b, samples));
                return batches.isEmpty() ? List.of(samples) : batches;
            }
            if (!batches.isEmpty()) {
                return batches;
            }
            return models == null ? List.of(DEFAULT_BATCH) : List.of(exportedBatch());
        }

        /** What one model at one B got before timing: the samplers' verdicts and every method's peak extra memory. */
        private record Preflight(Map<BenchMethod, Verification> verdicts, Map<BenchMethod, Long> peakExtraBytes) {
        }

        /**
         * Sets the model up at B = {@code batch} in this JVM (bad files fail here with a clear
         * message, before any JVM is forked), checks each timed sampler once against the reference
         * (exact, reduction sum), with check-sketch in the run also the vmap engine in sketch mode
         * (which must agree: a false alarm on a correct engine is a bug, not a timing), then measures
         * every timeable method's peak extra memory over one call (after one unmeasured call).
         */
        private Preflight preflight(String name, long batch, List<BenchMethod> timed) {
            SuiteBenchmark local = benchmark(name, batch, threads.get(0));
            local.setUp();
            try {
                Map<BenchMethod, Verification> verdicts = new EnumMap<>(BenchMethod.class);
                Workload w = local.workload();
                boolean vmapUsed = timed.stream().anyMatch(m -> m != BenchMethod.ENGINE
                        && m != BenchMethod.MICROBATCH && m != BenchMethod.BACKWARD);
                if (vmapUsed) {
                    verdicts.put(BenchMethod.VMAP, verifyVmap(w, CheckMode.EXACT));
                    if (timed.stream().anyMatch(BenchMethod::isSketch) && verdicts.get(BenchMethod.VMAP).passed()) {
                        Verification sketch = verifyVmap(w, CheckMode.SKETCH);
                        if (!sketch.passed()) {
                            throw new BenchException("the vmap engine's per-sample gradients differ from the reference "
                                    + "on " + name + " at B = " + batch + " in sketch mode (" + sketch.detail()
                                    + ") but not in exact mode: a false alarm, not timing it", null);
                        }
                    }
                }
                if (engine != null && timed.contains(BenchMethod.ENGINE)) {
                    try (GradSamplers registry = engine.open()) {
                        verdicts.put(BenchMethod.ENGINE, verify(w, engine.sampler(registry), CheckMode.EXACT));
                    }
                }
                Map<BenchMethod, Long> memory = new EnumMap<>(BenchMethod.class);
                for (BenchMethod m : timed) {
                    Verification v = verdicts.get(m);
                    if (v == null || v.status().timed()) {
                        m.callOnce(local);
                        memory.put(m, device.equals(Devices.CPU) ? PeakMemory.peakExtraBytes(() -> m.callOnce(local))
                                : PeakMemory.peakDeviceBytes(device, () -> m.callOnce(local)));
                    }
                }
                verdicts.keySet().retainAll(timed);
                return new Preflight(verdicts, memory);
            } finally {
                local.tearDown();
            }
        }

        /**
         * Refuses, in one line, a sweep whose largest B would need more memory than the machine has
         * available now (see {@link MemoryEstimate}): each method that will run on the model at that B
         * (the timed ones, and check-exact for the samplers' verification) is measured at two small
         * batch sizes in this JVM first. Where the memory available is unknown (not Linux), nothing is
         * refused.
         */
        private void requireMemory(String name, long largest, List<BenchMethod> timed) {
            OptionalLong available = SystemMemory.availableBytes();
            if (available.isEmpty()) {
                return;
            }
            long large = Math.min(MemoryEstimate.LARGE, user == null ? MemoryEstimate.LARGE : user.samples());
            long small = Math.min(MemoryEstimate.SMALL, large / 2);
            if (small < 1) {
                return;
            }
            List<BenchMethod> measured = new ArrayList<>(timed);
            if (timed.stream().anyMatch(BenchMethod::isSampler) && !measured.contains(BenchMethod.CHECK_EXACT)) {
                measured.add(BenchMethod.CHECK_EXACT);
            }
            Map<BenchMethod, long[]> peaks = new EnumMap<>(BenchMethod.class);
            Set<BenchMethod> failed = EnumSet.noneOf(BenchMethod.class);
            long[] inputBytes = new long[2];
            long gradientBytes = 0;
            long[] sizes = {small, large};
            for (int k = 0; k < 2; k++) {
                SuiteBenchmark local = benchmark(name, sizes[k], threads.get(0));
                local.setUp();
                try {
                    inputBytes[k] = local.workload().batchBytes();
                    gradientBytes = local.workload().parameterBytes();
                    for (BenchMethod m : measured) {
                        if (failed.contains(m)) {
                            continue;
                        }
                        try {
                            m.callOnce(local);
                            long peak = PeakMemory.peakExtraBytes(() -> m.callOnce(local));
                            peaks.computeIfAbsent(m, x -> new long[2])[k] = peak;
                        } catch (RuntimeException | LinkageError e) {
                            // A method that fails on the model is reported by the preflight, in its own words.
                            failed.add(m);
                        }
                    }
                } finally {
                    local.tearDown();
                }
            }
            peaks.keySet().removeAll(failed);
            if (peaks.isEmpty()) {
                return;
            }
            MemoryEstimate estimate = new MemoryEstimate(name, small, large, peaks,
                    Math.max(0, inputBytes[1] / large), gradientBytes);
            if (estimate.exceeds(largest, available.getAsLong())) {
                throw new BadInputException(estimate.refusal(largest, available.getAsLong()));
            }
        }

        /** The vmap engine's verdict; a failure other than refusing the model is the model's, and stops the run. */
        private Verification verifyVmap(Workload w, CheckMode mode) {
            try {
                return verify(w, Engines.vmap(), mode);
            } catch (BadInputException | UnsupportedModelException e) {
                throw e;
            } catch (Psg4jException e) {
                throw new BenchException("the vmap engine failed on " + w.name() + " at B = " + w.batchSize()
                        + (models == null ? "" : " (" + Suite.modelFile(models, w.name()) + ")")
                        + ": " + tellingLine(e.getMessage()), e);
            }
        }

        /** One check of {@code sampler} (reduction sum, probes included) against the microbatch reference. */
        private Verification verify(Workload w, GradSampler sampler, CheckMode mode) {
            try (PerSampleCheck check = w.check().reduction(Reduction.SUM).mode(mode).threads(threads.get(0)).build()) {
                CheckReport report = check.run(sampler);
                return report.passed() ? Verification.PASSED
                        : new Verification(Verification.Status.WRONG, why(report));
            } catch (UnsupportedModelException e) {
                return new Verification(Verification.Status.UNSUPPORTED, tellingLine(e.getMessage()));
            } catch (BadInputException e) {
                throw e;
            } catch (RuntimeException | LinkageError e) {
                if (sampler.name().equals("vmap") && e instanceof Psg4jException) {
                    throw e;
                }
                return new Verification(Verification.Status.FAILED, e.getClass().getSimpleName() + ": "
                        + tellingLine(e.getMessage()));
            }
        }

        /** The benchmark state for {@code name} at B and thread count, as JMH gets it from {@link #options}. */
        private SuiteBenchmark benchmark(String name, long batch, int threadCount) {
            SuiteBenchmark b = new SuiteBenchmark();
            Map<String, String> params = params(name, batch);
            b.suite = params.get("suite");
            b.batch = batch;
            b.threads = threadCount;
            b.models = params.get("models");
            b.model = params.get("model");
            b.input = params.get("input");
            b.target = params.get("target");
            b.loss = params.get("loss");
            b.batchDim = Integer.parseInt(params.get("batchDim"));
            b.engine = params.get("engine");
            b.plugins = params.get("plugins");
            b.engineOptions = params.get("engineOptions");
            b.device = params.get("device");
            b.sketchPrecision = params.get("sketchPrecision");
            return b;
        }

        /** Every {@link SuiteBenchmark} parameter but threads, for {@code name} at B. */
        private Map<String, String> params(String name, long batch) {
            String none = SuiteBenchmark.NONE;
            Map<String, String> p = new LinkedHashMap<>();
            p.put("suite", name);
            p.put("batch", Long.toString(batch));
            p.put("models", models == null ? SuiteBenchmark.BUILT_IN : models.toAbsolutePath().toString());
            p.put("model", user == null ? none : user.model().toAbsolutePath().toString());
            p.put("input", user == null ? none : user.input().toAbsolutePath().toString());
            p.put("target", user == null || user.target() == null ? none : user.target().toAbsolutePath().toString());
            p.put("loss", user == null ? "l1" : user.loss());
            p.put("batchDim", Integer.toString(user == null ? 0 : user.batchDim()));
            p.put("engine", engine == null ? none : engine.name());
            p.put("plugins", engine == null ? none : engine.pluginsParam());
            p.put("engineOptions", engine == null ? "{}" : engine.optionsParam());
            p.put("device", device);
            p.put("sketchPrecision", sketchPrecision.label());
            return p;
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

        /** The batch size of the single-batch export's inputs, common to every model. */
        private long exportedBatch() {
            Long found = null;
            for (String name : suites) {
                try (Suite suite = Suite.load(name, models)) {
                    long b = suite.batchSize();
                    if (found != null && b != found) {
                        throw new BadInputException("the inputs in " + models + " have different batch sizes (" + found
                                + " and " + b + " in " + name + "): export them together with bench_python.py --export");
                    }
                    found = b;
                }
            }
            return found;
        }

        private Options options(String name, long batch, List<BenchMethod> runnable) {
            String include = Pattern.quote(SuiteBenchmark.class.getName()) + "\\.("
                    + runnable.stream().map(BenchMethod::benchmarkName).collect(Collectors.joining("|")) + ")$";
            ChainedOptionsBuilder builder = new OptionsBuilder()
                    .include(include)
                    .param("threads", threads.stream().map(String::valueOf).toArray(String[]::new));
            params(name, batch).forEach(builder::param);
            return builder
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

        /** One row per method and threads of one model at one B; every one must have been measured. */
        private List<BenchResult.Row> rows(Collection<RunResult> results, String name, long batch,
                                           List<BenchMethod> runnable, Preflight checked) {
            Map<List<Object>, BenchResult.Timing> found = new LinkedHashMap<>();
            for (RunResult r : results == null ? List.<RunResult>of() : results) {
                BenchmarkParams params = r.getParams();
                String benchmark = params.getBenchmark();
                BenchMethod method = BenchMethod.ofBenchmark(benchmark.substring(benchmark.lastIndexOf('.') + 1));
                Result<?> primary = r.getPrimaryResult();
                Statistics stats = primary.getStatistics();
                found.put(List.of(method, Integer.parseInt(params.getParam("threads"))), new BenchResult.Timing(
                        stats.getPercentile(50), primary.getScore(), primary.getScoreError(), stats.getN()));
            }
            List<BenchResult.Row> rows = new ArrayList<>();
            List<String> missing = new ArrayList<>();
            for (int t : threads) {
                for (BenchMethod method : runnable) {
                    BenchResult.Timing timing = found.get(List.of(method, t));
                    if (timing == null || timing.samples() == 0) {
                        missing.add(name + "/" + method.label() + " B=" + batch + " threads=" + t);
                    } else {
                        rows.add(new BenchResult.Row(name, method, batch, t, timing, checked.verdicts().get(method),
                                checked.peakExtraBytes().get(method)));
                    }
                }
            }
            if (!missing.isEmpty()) {
                throw new BenchException("JMH returned no measurements for " + String.join(", ", missing)
                        + " (--verbose shows JMH's log)", null);
            }
            return rows;
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
