package dev.psg4j.bench;

import dev.psg4j.check.Batch;
import dev.psg4j.check.CheckMode;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Probes;
import dev.psg4j.check.Reduction;
import dev.psg4j.engine.Engines;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
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
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The JMH benchmarks behind {@code psg4j bench}: one suite model (its {@link Suite}) at one batch
 * size, l1 loss against zeros, each method timed per call: the engines and the backward with
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

    /** The {@link #models} value that means: build the suite in Java. */
    public static final String BUILT_IN = "-";

    private Suite model;
    private Batch samples;
    private GradSampler vmapEngine;
    private GradSampler microbatchEngine;
    private Tensor[] parameters;

    @Setup(Level.Trial)
    public void setUp() {
        torch.set_num_threads(threads);
        model = BUILT_IN.equals(models) ? Suite.build(suite, batch) : Suite.load(suite, Path.of(models), batch);
        samples = Batch.of(model.input());
        vmapEngine = Engines.vmap();
        microbatchEngine = Engines.microbatch();
        parameters = model.model().trainableParameters().values().toArray(Tensor[]::new);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        samples.close();
        model.close();
    }

    /** The vmap engine's per-sample gradients: vmap(grad) natively, the whole batch in one pass. */
    @Benchmark
    public int vmap() {
        try (PointerScope scope = new PointerScope()) {
            return vmapEngine.perSampleGradients(model.model(), samples, Loss.L1, Reduction.SUM).size();
        }
    }

    /** The microbatch engine's (the reference's) per-sample gradients: every sample alone. */
    @Benchmark
    public int microbatch() {
        try (PointerScope scope = new PointerScope()) {
            return microbatchEngine.perSampleGradients(model.model(), samples, Loss.L1, Reduction.SUM).size();
        }
    }

    /**
     * A full exact check of the vmap engine, everything a caller pays for: building the check, the
     * probes, then for both reductions the candidate and the reference streamed into the comparison.
     */
    @Benchmark
    public boolean checkExact() {
        try (PointerScope scope = new PointerScope();
             PerSampleCheck check = PerSampleCheck.builder().model(model.model()).inputs(model.input())
                     .loss(Loss.L1).reductions(Reduction.SUM, Reduction.MEAN).threads(threads).build()) {
            return check.run(vmapEngine).passed();
        }
    }

    /**
     * The same full check in sketch mode: building the check, the probes, then for both reductions
     * the candidate against random projections of the reference (one batched backward each), any
     * parameter whose residual is not at rounding level decided exactly.
     */
    @Benchmark
    public boolean checkSketch() {
        try (PointerScope scope = new PointerScope();
             PerSampleCheck check = PerSampleCheck.builder().model(model.model()).inputs(model.input())
                     .loss(Loss.L1).reductions(Reduction.SUM, Reduction.MEAN).mode(CheckMode.SKETCH)
                     .threads(threads).build()) {
            return check.run(vmapEngine).passed();
        }
    }

    /** The probes a check runs first, alone: every sample and pair of the batch, clean on the suite. */
    @Benchmark
    public boolean probe() {
        try (PointerScope scope = new PointerScope()) {
            return Probes.report(model.model(), samples, Probes.DEFAULT_PROBE_SAMPLES).passed();
        }
    }

    /** One plain batched backward: forward the whole batch, the loss, autograd's grad of the parameters. */
    @Benchmark
    public long backward() {
        try (PointerScope scope = new PointerScope()) {
            Tensor loss = Loss.L1.apply(model.forward(model.input()), List.of(), Reduction.SUM, model.batchSize());
            return torch.grad(new TensorVector(loss), new TensorVector(parameters)).size();
        }
    }
}
