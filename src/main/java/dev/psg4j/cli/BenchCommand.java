package dev.psg4j.cli;

import dev.psg4j.BadInputException;
import dev.psg4j.bench.Bench;
import dev.psg4j.bench.BenchMethod;
import dev.psg4j.bench.BenchResult;
import dev.psg4j.bench.EngineSpec;
import dev.psg4j.bench.Suite;
import dev.psg4j.bench.UserModel;
import dev.psg4j.check.SketchPrecision;

import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code psg4j bench}: the DESIGN §7 suite, or the user's own model, timed with JMH over a sweep of
 * batch sizes (and thread counts), medians per model, method and B, their ratios, each method's peak
 * extra memory, the samplers' verification at every B, and optionally JSON and an HTML page.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Times per-sample gradients on the benchmark suite with JMH.",
                "Per model (l1 loss) and batch size: vmap (the vmap engine), microbatch (the reference",
                "engine), check-exact and check-sketch (a full check of the vmap engine in that mode, probes",
                "and both reductions included, as Opacus's check runs), probe (the probes alone),",
                "backward (one plain batched backward), check-in-loop (a reused sketch check of precomputed",
                "gradients, both reductions, probes cached: what a training loop pays per step), dp-step",
                "(vmap gradients, flat clipping, noise, update) and dp-step-verified (the same with a sketch",
                "check of the step's gradients); the engines, backward and the steps use reduction sum.",
                "Prints the median (p50) ms per call and the ratios vmap/backward, microbatch/vmap,",
                "check-exact/backward, check-sketch/backward, check-exact/check-sketch, probe/backward,",
                "check-in-loop/backward, dp-step-verified/dp-step.",
                "  mlp  Linear(784,256)-ReLU-Linear(256,10)                    x [B,784]",
                "  cnn  Conv2d(1,16,5)-ReLU-MaxPool2d(2)-Conv2d(16,32,5)-ReLU-",
                "       MaxPool2d(2)-Flatten-Linear(512,10)                    x [B,1,28,28]",
                "  seq  Linear(64,128)-LayerNorm(128)-GELU-Linear(128,64)      x [B,16,64]",
                "  emb  Embedding(1000,64)-Flatten-Linear(512,10)              x int [B,8]",
                "Built in Java; with --models DIR they take the weights and inputs of the TorchScript",
                "models src/test/python/bench_python.py --export DIR [--batch LIST] wrote (Python times the same).",
                "--engine NAME [--plugin JAR]... adds the method 'engine': that grad sampler (a built-in or a",
                "plug-in's), timed next to vmap, microbatch and backward. --model M.pt --input X.pt [--target Y.pt",
                "--loss L] times your own TorchScript model instead of the suite, each B on the first B samples",
                "of X (a B above X's batch is refused; default: X's whole batch).",
                "Before timing, each sampler (vmap, the engine) is checked once per B against the microbatch",
                "reference (exact, reduction sum): a wrong one's timing is marked WRONG, one that refuses the",
                "model 'unsupported' (not timed). Every method's peak extra memory over one call (MiB above the",
                "resident set before it; on CUDA the caching allocator's peak above its bytes in use) is measured in",
                "this JVM and printed in a third table. --device cuda[:N] times on a GPU: every timed call ends",
                "with a device synchronization (JMH measures host time, CUDA runs asynchronously).",
                "A progress bar over the whole run goes to stderr when it is a terminal (not with --verbose",
                "or --no-progress)."},
        exitCodeListHeading = "%nExit status:%n",
        exitCodeList = {"0:the benchmarks ran", "2:bad usage, bad input, or a benchmark failed"})
final class BenchCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--suite", paramLabel = "NAME", defaultValue = "all",
            description = "mlp, cnn, seq, emb or all; default ${DEFAULT-VALUE}")
    String suite;

    @Option(names = "--batch", paramLabel = "B,B2,...",
            description = "batch sizes to sweep, a comma list (e.g. 1,8,32,128,256); default 32 (with --models: "
                    + "the exported inputs' batch)")
    String batch;

    @Option(names = "--threads", paramLabel = "N,N2,...", defaultValue = "1",
            description = "LibTorch's intra-op threads, or a comma list of counts to sweep; default ${DEFAULT-VALUE}")
    String threads;

    @Option(names = "--methods", paramLabel = "LIST",
            description = "comma list of vmap, microbatch, check-exact, check-sketch, probe, backward, check-in-loop, "
                    + "dp-step, dp-step-verified, engine; default "
                    + "all (engine with --engine)")
    String methods;

    @Mixin
    EngineOptions engines;

    @Mixin
    DeviceOptions devices;

    @ArgGroup(exclusive = false, heading = "Your own model instead of the suite:%n")
    ModelBatchOptions source;

    @Option(names = "--target", paramLabel = "Y.pt", description = "with --model: torch.save of the loss targets")
    Path target;

    @Option(names = "--loss", paramLabel = "LOSS",
            description = "with --model: l1 (against zeros without a target), mse, cross_entropy or sum; default l1")
    String loss;

    @Option(names = "--models", paramLabel = "DIR",
            description = "give the models built in Java the weights of DIR/<suite>.pt (TorchScript) and time them "
                    + "on DIR/<suite>_x_b<B>.pt (or DIR/<suite>_x.pt), as written by python "
                    + "src/test/python/bench_python.py --export DIR --batch LIST")
    Path models;

    @Option(names = "--warmups", paramLabel = "N", defaultValue = "3",
            description = "JMH warm-up iterations per benchmark; default ${DEFAULT-VALUE}")
    int warmups;

    @Option(names = "--iterations", paramLabel = "N", defaultValue = "5",
            description = "JMH measured iterations per benchmark; default ${DEFAULT-VALUE}")
    int iterations;

    @Option(names = "--iteration-time", paramLabel = "MS", defaultValue = "400",
            description = "milliseconds per iteration (each calls the method at least once); default ${DEFAULT-VALUE}")
    long iterationMillis;

    @Option(names = "--forks", paramLabel = "N", defaultValue = "1",
            description = "JVMs forked per benchmark; 0 runs in this JVM (quicker, noisier); default ${DEFAULT-VALUE}")
    int forks;

    @Option(names = "--sketch-precision", paramLabel = "P", defaultValue = "double",
            description = "the sketch methods' projections (check-sketch, check-in-loop, dp-step-verified): double or "
                    + "float-first (see psg4j check --help); default ${DEFAULT-VALUE}")
    String sketchPrecision;

    @Option(names = "--json", paramLabel = "OUT", description = "also write every timing as JSON")
    Path json;

    @Option(names = "--html", paramLabel = "OUT",
            description = "also write an HTML page: per model, ms against B per method on log axes")
    Path html;

    @Option(names = "--no-progress", description = "draw no progress bar (none is drawn when stderr is no terminal)")
    boolean noProgress;

    @Option(names = "--verbose", description = "show JMH's own progress log")
    boolean verbose;

    @Override
    public Integer call() {
        return Failures.guarded(spec, this::bench);
    }

    private int bench() {
        PrintWriter out = spec.commandLine().getOut();
        Bench.Builder builder = Bench.builder()
                .device(devices.canonical())
                .sketchPrecision(SketchPrecision.named(sketchPrecision))
                .suites(Suite.named(suite))
                .batches(batch == null ? List.of() : CommaLists.of("--batch", batch,
                        "a comma list of batch sizes like 1,8,32", text -> CommaLists.positiveLong("--batch", text)))
                .threads(CommaLists.of("--threads", threads, "a thread count or a comma list like 1,2",
                        text -> CommaLists.positiveInt("--threads", text)))
                .warmups(warmups)
                .iterations(iterations)
                .iterationMillis(iterationMillis)
                .forks(forks)
                .log(verbose ? new WriterStream(out) : null)
                .progress(drawProgress() ? System.err : null)
                .model(userModel())
                .engine(engineSpec());
        if (methods != null) {
            builder.methods(CommaLists.of("--methods", methods, "a comma list of " + BenchMethod.labels(),
                    BenchMethod::named));
        }
        if (models != null) {
            if (!Files.isDirectory(models)) {
                throw new BadInputException("--models " + models + " is not a folder: export the suite with "
                        + "python src/test/python/bench_python.py --export " + models);
            }
            builder.models(models);
        }
        ReportFiles reports = ReportFiles.of(json, html);
        BenchResult result = builder.run();
        out.print(result.table());
        return reports.write(spec, Psg4jCli.PASSED, result::writeJson, "JSON results", result::writeHtml, "HTML page");
    }

    /** The user's model, or null for the suite; --target and --loss only with it. */
    private UserModel userModel() {
        if (source == null) {
            for (String option : List.of("--target", "--loss")) {
                if (spec.commandLine().getParseResult().hasMatchedOption(option)) {
                    throw new BadInputException(option + " belongs to a model of your own: give --model M.pt --input "
                            + "X.pt with it, or drop it (the suite's loss is l1 against zeros)");
                }
            }
            return null;
        }
        if (spec.commandLine().getParseResult().hasMatchedOption("--suite")) {
            throw new BadInputException("--suite and --model both name what to time: give one of them");
        }
        return new UserModel(source.model, source.input, target, loss == null ? "l1" : loss, source.batchDim);
    }

    /**
     * The sampler --engine names, or null when it names vmap without options (timed anyway). A
     * plug-in jar without --engine is refused: the jar's engine would silently go untimed.
     */
    private EngineSpec engineSpec() {
        Map<String, String> options = engines.options(engines.engine);
        engines.requireApplicable(spec, null);
        if (EngineOptions.DEFAULT_ENGINE.equals(engines.engine) && options.isEmpty()) {
            return null;
        }
        return new EngineSpec(engines.engine, options, engines.plugins);
    }

    /**
     * A bar only on an interactive terminal: Java 17's console exists only when stdin and stdout are
     * terminals (a redirected run, CI, a test gets none), and a dumb terminal cannot redraw a line.
     * JMH's own log (--verbose) would interleave with it, so it turns the bar off too.
     */
    private boolean drawProgress() {
        return !noProgress && !verbose && System.console() != null && !"dumb".equals(System.getenv("TERM"));
    }

    /** JMH writes bytes; the command's output is a PrintWriter. Decodes UTF-8 line by line. */
    private static final class WriterStream extends OutputStream {
        private final PrintWriter writer;
        private final java.io.ByteArrayOutputStream line = new java.io.ByteArrayOutputStream();

        WriterStream(PrintWriter writer) {
            this.writer = writer;
        }

        @Override
        public synchronized void write(int b) {
            line.write(b);
            if (b == '\n') {
                flush();
            }
        }

        @Override
        public synchronized void flush() {
            writer.print(line.toString(StandardCharsets.UTF_8));
            writer.flush();
            line.reset();
        }

        @Override
        public void close() throws IOException {
            flush();
        }
    }
}
