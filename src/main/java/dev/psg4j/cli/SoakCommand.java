package dev.psg4j.cli;

import dev.psg4j.bench.Soak;
import dev.psg4j.check.Batch;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.engine.Engines;
import dev.psg4j.engine.TensorMaps;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;

import org.bytedeco.pytorch.Tensor;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code psg4j soak}: thousands of checks in one JVM, as a training job runs them, each with a new
 * Model and PerSampleCheck (or one shared Model), all closed; prints native memory and live
 * pointers per interval and fails when they grow.
 */
@Command(name = "soak", mixinStandardHelpOptions = true, sortOptions = false,
        header = "Runs a check thousands of times in one JVM; fails when native memory or live pointers grow.",
        description = {"Runs the same check many times in this JVM, closing everything each time, and prints",
                "per interval the memory beyond the Java heap (resident set - the heap's resident pages) and JavaCPP's",
                "live native pointers; then fits a least-squares line through the samples (at least 20) and judges",
                "its slope per check. Run it at the default heap: a small -Xmx hides leaks by forcing GC."},
        exitCodeListHeading = "%nExit status:%n",
        exitCodeList = {"0:native memory grew <= 1,024 bytes and live pointers <= 0.01 per check (fitted slopes)",
                "1:one of them grew more (a leak)", "2:bad usage or bad input (fewer than 20 samples among them)"})
final class SoakCommand implements Callable<Integer> {
    private static final double MB = 1024.0 * 1024.0;

    @Spec
    CommandSpec spec;

    @Mixin
    ModelBatchOptions source;

    @Option(names = "--target", paramLabel = "Y.pt", description = "torch.save of the loss targets (mse, cross_entropy)")
    java.nio.file.Path target;

    @Option(names = "--loss", paramLabel = "LOSS", defaultValue = "l1",
            description = "l1, mse, cross_entropy or sum; default ${DEFAULT-VALUE}")
    String loss;

    @Option(names = "--engine", paramLabel = "ENGINE", defaultValue = "vmap",
            description = "vmap, microbatch, or mixed (alternating); default ${DEFAULT-VALUE}")
    String engine;

    @Option(names = "--checks", paramLabel = "N", defaultValue = "10000", description = "checks to run; default ${DEFAULT-VALUE}")
    long checks;

    @Option(names = "--every", paramLabel = "K",
            description = "sample memory after every K checks, at least 20 samples in all; default: checks / 100")
    Long every;

    @Option(names = "--warmup", paramLabel = "W", defaultValue = "" + Soak.SETTLING_CHECKS,
            description = "checks to run before the first interval, unsampled; default ${DEFAULT-VALUE}")
    long warmup;

    @Option(names = "--shared-model", negatable = false,
            description = "load the model once and share it by all checks (default: a new Model per check)")
    boolean sharedModel;

    @Override
    public Integer call() {
        return Failures.guarded(spec, this::soak);
    }

    private int soak() {
        long interval = every != null ? every : Math.max(1, checks / Soak.DEFAULT_SAMPLES);
        Soak.requireValid(warmup, checks, interval);
        List<GradSampler> samplers = samplers();
        Loss lossFn = Loss.named(loss);
        PrintWriter out = spec.commandLine().getOut();
        if (!Soak.heapLocated()) {
            out.println("note: the heap's resident pages are unknown here (no /proc/self/smaps, or a collector"
                    + " such as ZGC): native = resident - committed heap, which overstates growth; use G1 on Linux");
        }
        out.printf(Locale.ROOT, "%8s  %12s  %12s  %12s  %9s%n", "checks", "resident MB", "heap MB", "native MB",
                "pointers");
        // The batch is read once: what is soaked is the checks, not the file reader.
        List<Tensor> inputs = source.inputs();
        List<Tensor> targets = target == null ? List.of() : new ArrayList<>(TensorMaps.load(target).values());
        Soak.Result result;
        try (Model shared = sharedModel ? Models.torchScript(source.model) : null) {
            long[] done = {0};
            Runnable check = () -> {
                GradSampler sampler = samplers.get((int) (done[0]++ % samplers.size()));
                if (shared != null) {
                    runOnce(shared, inputs, targets, lossFn, sampler);
                } else {
                    try (Model model = Models.torchScript(source.model)) {
                        runOnce(model, inputs, targets, lossFn, sampler);
                    }
                }
            };
            result = Soak.run(warmup, checks, interval, check, s -> {
                out.printf(Locale.ROOT, "%8d  %12.1f  %12.1f  %12.1f  %9d%n", s.checks(), s.residentBytes() / MB,
                        s.heapBytes() / MB, s.nativeBytes() / MB, s.pointers());
                out.flush();
            });
        } finally {
            inputs.forEach(Tensor::close);
            targets.forEach(Tensor::close);
        }
        Soak.Trend memory = result.nativeTrend();
        Soak.Trend pointers = result.pointerTrend();
        out.printf(Locale.ROOT, "native memory %.1f MB -> %.1f MB: %+.0f bytes per check (95 %% CI +/- %.0f; limit %.0f)%n",
                result.first().nativeBytes() / MB, result.last().nativeBytes() / MB, memory.perCheck(),
                memory.confidence95(), Soak.NATIVE_SLOPE_LIMIT);
        out.printf(Locale.ROOT, "live pointers %d -> %d: %+.4f per check (95 %% CI +/- %.4f; limit %.2f)%n",
                result.first().pointers(), result.last().pointers(), pointers.perCheck(), pointers.confidence95(),
                Soak.POINTER_SLOPE_LIMIT);
        out.printf(Locale.ROOT, "least-squares slopes over %d samples, checks %d to %d: %s%n", memory.samples(),
                result.first().checks(), result.last().checks(), result.withinLimits() ? "bounded" : "GROWING");
        out.flush();
        return result.withinLimits() ? Psg4jCli.PASSED : Psg4jCli.FAILED;
    }

    private void runOnce(Model model, List<Tensor> inputs, List<Tensor> targets, Loss lossFn, GradSampler sampler) {
        try (PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(inputs).targets(targets)
                .batchDim(source.batchDim).loss(lossFn).build()) {
            check.run(sampler);
        }
    }

    private List<GradSampler> samplers() {
        return switch (engine.toLowerCase(Locale.ROOT)) {
            case "vmap" -> List.of(Engines.vmap());
            case "microbatch" -> List.of(Engines.microbatch());
            case "mixed" -> List.of(Engines.vmap(), Engines.microbatch());
            default -> throw new dev.psg4j.BadInputException("unknown engine '" + engine
                    + "': use --engine vmap, microbatch or mixed");
        };
    }
}
