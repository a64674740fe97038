package dev.psg4j.bench;

import dev.psg4j.check.Batch;
import dev.psg4j.check.CheckMode;
import dev.psg4j.check.Devices;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Probes;
import dev.psg4j.check.Reduction;
import dev.psg4j.check.SketchPrecision;
import dev.psg4j.engine.Engines;
import dev.psg4j.engine.GradSamplers;
import dev.psg4j.report.CheckReport;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The JMH benchmarks behind {@code psg4j bench}: one suite model (its {@link Suite}, l1 loss
 * against zeros) or the user's model ({@link UserModel}) at one batch size, each method timed per call: the engines and the backward with
 * reduction sum, the checks with both reductions (as Opacus's check runs). {@link Bench} runs them with its
 * options; the {@code @Param} defaults here only make the class runnable by JMH's own main.
 *
 * <p>Every call runs in a {@link PointerScope}, so the tensors it makes (the per-sample gradients
 * are B × |θ| floats) are freed when it returns rather than when the garbage collector gets to them.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class SuiteBenchmark {
    /** Which suite model: mlp, cnn, seq or emb. */
    @Param({"mlp"})
    public String suite;

    /** B: the batch the models built in Java draw, the exported input taken with {@link #models}. */
    @Param({"32"})
    public long batch;

    /** LibTorch's intra-op threads. */
    @Param({"1"})
    public int threads;

    /** The folder of exported weights and inputs, or {@link #BUILT_IN} for seeded weights. */
    @Param({BUILT_IN})
    public String models;

    /** The user's TorchScript file ({@link UserModel}), or {@link #NONE} for the suite model {@link #suite}. */
    @Param({NONE})
    public String model;

    /** With {@link #model}: its batch file. */
    @Param({NONE})
    public String input;

    /** With {@link #model}: its targets file, or {@link #NONE}. */
    @Param({NONE})
    public String target;

    /** With {@link #model}: the loss. */
    @Param({"l1"})
    public String loss;

    /** With {@link #model}: the batch dimension of inputs and targets. */
    @Param({"0"})
    public int batchDim;

    /** The sampler the {@code engine} benchmark times (a registered name), or {@link #NONE}. */
    @Param({NONE})
    public String engine;

    /** Plug-in jars for {@link #engine}: {@link EngineSpec#pluginsParam()}. */
    @Param({NONE})
    public String plugins;

    /** Options of {@link #engine}: {@link EngineSpec#optionsParam()}. */
    @Param({"{}"})
    public String engineOptions;

    /** Where the model, the batch and every call run: a canonical device ("cpu", "cuda:0"). */
    @Param({"cpu"})
    public String device;

    /** The sketch methods' projection precision: a {@link SketchPrecision#label()}. */
    @Param({"double"})
    public String sketchPrecision;

    /** The {@link #models} value that means: build the suite in Java. */
    public static final String BUILT_IN = "-";

    /** The value of a file or name parameter that is not given. */
    public static final String NONE = "-";

    private Workload workload;
    private Batch samples;
    private GradSampler vmapEngine;
    private GradSampler microbatchEngine;
    private GradSamplers registry;
    private GradSampler chosenEngine;
    private Map<String, Tensor> trainable;
    private Tensor[] parameters;
    private boolean onCuda;
    private InLoop inLoop;

    /**
     * What the in-the-loop methods reuse from call to call, as a training loop does: a sketch check
     * of both reductions and one of reduction sum (their probes run on the first call only) and the
     * vmap engine's gradients of both reductions for {@link #checkInLoop}.
     */
    private record InLoop(PerSampleCheck bothReductions, PerSampleCheck sumOnly, GradSampler candidates,
                          Map<Reduction, Map<String, Tensor>> gradients) implements AutoCloseable {
        @Override
        public void close() {
            try (PerSampleCheck b = bothReductions; PerSampleCheck s = sumOnly) {
                gradients.values().forEach(m -> m.values().forEach(Tensor::close));
            }
        }
    }

    @Setup(Level.Trial)
    public void setUp() {
        torch.set_num_threads(threads);
        workload = NONE.equals(model)
                ? Workload.suite(suite, BUILT_IN.equals(models) ? null : Path.of(models), batch, device)
                : userModel().open(batch, device);
        onCuda = !"cpu".equals(device);
        samples = workload.batch();
        vmapEngine = Engines.vmap();
        microbatchEngine = Engines.microbatch();
        if (!NONE.equals(engine)) {
            EngineSpec spec = EngineSpec.ofParams(engine, plugins, engineOptions);
            registry = spec.open();
            chosenEngine = spec.sampler(registry);
        }
        trainable = workload.model().trainableParameters();
        parameters = trainable.values().toArray(Tensor[]::new);
    }

    /** The {@link UserModel} the parameters name. */
    UserModel userModel() {
        return new UserModel(Path.of(model), Path.of(input), NONE.equals(target) ? null : Path.of(target), loss, batchDim);
    }

    /** The workload set up (for the verification and memory measurement run in the bench's own JVM). */
    Workload workload() {
        return workload;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (inLoop != null) {
            inLoop.close();
            inLoop = null;
        }
        trainable.values().forEach(Tensor::close);  // the handles; the parameters stay the model's
        workload.close();
        if (registry != null) {
            registry.close();
        }
    }

    /** The vmap engine's per-sample gradients: vmap(grad) natively, the whole batch in one pass. */
    @Benchmark
    public int vmap() {
        try (PointerScope scope = new PointerScope()) {
            return synced(vmapEngine.perSampleGradients(workload.model(), samples, workload.loss(), Reduction.SUM).size());
        }
    }

    /** The microbatch engine's (the reference's) per-sample gradients: every sample alone. */
    @Benchmark
    public int microbatch() {
        try (PointerScope scope = new PointerScope()) {
            return synced(microbatchEngine.perSampleGradients(workload.model(), samples, workload.loss(), Reduction.SUM).size());
        }
    }

    /** The {@code --engine} sampler's per-sample gradients (a built-in or a plug-in's), reduction sum. */
    @Benchmark
    public int engine() {
        if (chosenEngine == null) {
            throw new IllegalStateException("the engine benchmark needs the engine parameter");
        }
        try (PointerScope scope = new PointerScope()) {
            return synced(chosenEngine.perSampleGradients(workload.model(), samples, workload.loss(), Reduction.SUM).size());
        }
    }

    /**
     * A full exact check of the vmap engine, everything a caller pays for: building the check, the
     * probes, then for both reductions the candidate and the reference streamed into the comparison.
     */
    @Benchmark
    public boolean checkExact() {
        Probes.forget(workload.model());  // a first check's probes, not the model's memo of them
        try (PointerScope scope = new PointerScope();
             PerSampleCheck check = workload.check().reductions(Reduction.SUM, Reduction.MEAN).threads(threads).build()) {
            return synced(check.run(vmapEngine).passed());
        }
    }

    /**
     * The same full check in sketch mode: building the check, the probes, then for both reductions
     * the candidate against random projections of the reference (one batched backward each), any
     * parameter whose residual is not at rounding level decided exactly.
     */
    @Benchmark
    public boolean checkSketch() {
        Probes.forget(workload.model());
        try (PointerScope scope = new PointerScope();
             PerSampleCheck check = workload.check().reductions(Reduction.SUM, Reduction.MEAN).mode(CheckMode.SKETCH).sketchPrecision(SketchPrecision.named(sketchPrecision))
                     .threads(threads).build()) {
            return synced(check.run(vmapEngine).passed());
        }
    }

    /** The probes a check runs first, alone: every sample and pair of the batch, clean on the suite. */
    @Benchmark
    public boolean probe() {
        try (PointerScope scope = new PointerScope()) {
            return synced(Probes.report(workload.model(), samples, Probes.DEFAULT_PROBE_SAMPLES).passed());
        }
    }

    /**
     * A sketch check as a training loop runs it on every step, both reductions: one check reused
     * (its probes cached after the first call), the candidate computed before (the step's own
     * per-sample gradients): what verification adds to a step that has its gradients already.
     */
    @Benchmark
    public boolean checkInLoop() {
        InLoop loop = inLoop();
        try (PointerScope scope = new PointerScope()) {
            return synced(loop.bothReductions().run(loop.candidates()).passed());
        }
    }

    /** A DP-SGD step: the vmap engine's per-sample gradients (reduction sum), flat clipping, noise, update ({@link DpSgdStep}). */
    @Benchmark
    public int dpStep() {
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> grads = vmapEngine.perSampleGradients(workload.model(), samples, workload.loss(), Reduction.SUM);
            DpSgdStep.apply(trainable, grads, samples.size());
            return synced(grads.size());
        }
    }

    /**
     * The same DP-SGD step verified: between the gradients and the clipping, a sketch check of those
     * very gradients (one reused check, probes cached). A failing check throws: a step whose
     * gradients are wrong is not a timing.
     */
    @Benchmark
    public int dpStepVerified() {
        InLoop loop = inLoop();
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> grads = vmapEngine.perSampleGradients(workload.model(), samples, workload.loss(), Reduction.SUM);
            CheckReport report = loop.sumOnly().run(Engines.precomputed("vmap", Reduction.SUM, grads));
            if (!report.passed()) {
                throw new IllegalStateException("the sketch check of a DP-SGD step's per-sample gradients failed on "
                        + workload.name() + " at B = " + samples.size() + ": " + report.summary() + "\n" + report.toJson());
            }
            DpSgdStep.apply(trainable, grads, samples.size());
            return synced(grads.size());
        }
    }

    private InLoop inLoop() {
        if (inLoop == null) {
            Map<Reduction, Map<String, Tensor>> gradients = new EnumMap<>(Reduction.class);
            for (Reduction r : Reduction.values()) {
                gradients.put(r, vmapEngine.perSampleGradients(workload.model(), samples, workload.loss(), r));
            }
            inLoop = new InLoop(
                    workload.check().reductions(Reduction.SUM, Reduction.MEAN).mode(CheckMode.SKETCH).sketchPrecision(SketchPrecision.named(sketchPrecision)).threads(threads).build(),
                    workload.check().reductions(Reduction.SUM).mode(CheckMode.SKETCH).sketchPrecision(SketchPrecision.named(sketchPrecision)).threads(threads).build(),
                    Engines.precomputed("vmap", gradients), gradients);
        }
        return inLoop;
    }

    /** One plain batched backward: forward the whole batch, the loss, autograd's grad of the parameters. */
    @Benchmark
    public long backward() {
        try (PointerScope scope = new PointerScope()) {
            return synced(workload.backward(parameters));
        }
    }

    /**
     * {@code result}, once the device has finished the call's work: CUDA runs asynchronously and
     * JMH measures host time, so an unsynchronized call would time only the launches.
     */
    private <T> T synced(T result) {
        if (onCuda) {
            Devices.synchronize(device);
        }
        return result;
    }
}
