package dev.psg4j.examples;

import dev.psg4j.check.Batch;
import dev.psg4j.check.CheckMode;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Reduction;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ReLUImpl;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A DP-SGD training loop that verifies the per-sample gradients it clips and noises: a Java-built
 * MLP learns a random linear teacher's labels from the vmap engine's per-sample gradients
 * (flat clipping at {@code C}, Gaussian noise σ·C, Opacus's formula), a sketch check of those very
 * gradients every step (one batched forward and two backwards; the probes run once, on the first
 * step) and an exact check every {@code exactEvery} steps. One check, built before the loop,
 * serves every step ({@link PerSampleCheck#run(GradSampler, List, List)}).
 *
 * <p>Run it: {@code java -cp target/psg4j.jar dev.psg4j.examples.DpSgdTrainingLoop [steps]}.
 */
public final class DpSgdTrainingLoop {
    static final int FEATURES = 20, HIDDEN = 32, CLASSES = 4;
    static final double CLIP = 1.0, NOISE = 0.5, LEARNING_RATE = 0.5;

    /** What the loop did: checks run and failed, the loss before and after, time spent per kind of work. */
    public record Result(int steps, int sketchChecks, int exactChecks, List<Integer> failedSteps, double firstLoss,
                         double lastLoss, double engineMillis, double sketchMillis, double exactMillis) {
        public String summary() {
            return String.format(Locale.ROOT, "%d DP-SGD steps: loss %.3f -> %.3f; %d sketch checks (%.2f ms each), "
                            + "%d exact checks (%.1f ms each), %d failed; per-sample gradients %.2f ms per step",
                    steps, firstLoss, lastLoss, sketchChecks, sketchMillis / Math.max(1, sketchChecks), exactChecks,
                    exactMillis / Math.max(1, exactChecks), failedSteps.size(), engineMillis / steps);
        }
    }

    private DpSgdTrainingLoop() {
    }

    public static void main(String[] args) {
        int steps = args.length > 0 ? Integer.parseInt(args[0]) : 300;
        Result result = train(steps, 64, 100, 0);
        System.out.println(result.summary());
        System.exit(result.failedSteps().isEmpty() ? 0 : 1);
    }

    /** Trains for {@code steps} steps of {@code batch} samples; seeded, so two runs give the same result. */
    public static Result train(int steps, int batch, int exactEvery, long seed) {
        torch.manual_seed(seed);
        SequentialImpl net = new SequentialImpl();
        net.push_back("0", new LinearImpl(FEATURES, HIDDEN));
        net.push_back("1", new ReLUImpl());
        net.push_back("2", new LinearImpl(HIDDEN, CLASSES));
        net.eval();
        Tensor teacher = torch.randn(FEATURES, CLASSES);
        Tensor x0 = torch.randn(batch, FEATURES);
        Tensor y0 = labels(x0, teacher);
        List<Integer> failed = new ArrayList<>();
        double first = Double.NaN, last = Double.NaN, engineMs = 0, sketchMs = 0, exactMs = 0;
        int sketches = 0, exacts = 0;
        try (Model model = Models.module(net);
             PerSampleCheck sketch = check(model, x0, y0, CheckMode.SKETCH);
             PerSampleCheck exact = check(model, x0, y0, CheckMode.EXACT)) {
            for (int step = 0; step < steps; step++) {
                try (PointerScope scope = new PointerScope()) {  // frees the step's tensors
                    Tensor x = torch.randn(batch, FEATURES);
                    Tensor y = labels(x, teacher);
                    long t0 = System.nanoTime();
                    Map<String, Tensor> grads;
                    try (Batch b = new Batch(List.of(x), List.of(y), 0, 0)) {
                        grads = Engines.vmap().perSampleGradients(model, b, Loss.CROSS_ENTROPY, Reduction.SUM);
                    }
                    long t1 = System.nanoTime();
                    GradSampler used = Engines.precomputed("vmap", Reduction.SUM, grads);
                    CheckReport report = sketch.run(used, List.of(x), List.of(y));
                    long t2 = System.nanoTime();
                    sketches++;
                    boolean passed = report.passed();
                    if ((step + 1) % exactEvery == 0) {
                        passed &= exact.run(used, List.of(x), List.of(y)).passed();
                        exacts++;
                        exactMs += (System.nanoTime() - t2) / 1e6;
                    }
                    engineMs += (t1 - t0) / 1e6;
                    sketchMs += (t2 - t1) / 1e6;
                    if (!passed) {
                        failed.add(step);
                    }
                    double loss = loss(net, x, y);
                    first = step == 0 ? loss : first;
                    last = loss;
                    privateStep(model, grads, batch);
                }
            }
        }
        return new Result(steps, sketches, exacts, failed, first, last, engineMs, sketchMs, exactMs);
    }

    private static PerSampleCheck check(Model model, Tensor x, Tensor y, CheckMode mode) {
        return PerSampleCheck.builder().model(model).inputs(x).targets(y).loss(Loss.CROSS_ENTROPY)
                .reduction(Reduction.SUM).mode(mode).build();
    }

    private static Tensor labels(Tensor x, Tensor teacher) {
        return x.matmul(teacher).argmax(new LongOptional(1), false);
    }

    private static double loss(SequentialImpl net, Tensor x, Tensor y) {
        try (NoGradGuard noGrad = new NoGradGuard()) {
            return torch.cross_entropy_loss(net.forward(x), y).item_double();
        }
    }

    /**
     * θ -= lr · (Σᵢ gᵢ · min(1, C / (‖gᵢ‖ + 1e-6)) + σ·C·N(0, 1)) / B, in place: the model's own
     * parameter tensors, which psg4j's replicas share.
     */
    private static void privateStep(Model model, Map<String, Tensor> grads, int batch) {
        Tensor squares = null;
        for (Tensor g : grads.values()) {
            Tensor s = g.flatten(1, -1).square().sum(1);
            squares = squares == null ? s : squares.add(s);
        }
        Tensor factor = squares.sqrt().add(new Scalar(1e-6)).reciprocal().mul(new Scalar(CLIP)).clamp_max(new Scalar(1.0));
        Map<String, Tensor> params = model.trainableParameters();
        try (NoGradGuard noGrad = new NoGradGuard()) {
            for (Map.Entry<String, Tensor> p : params.entrySet()) {
                Tensor g = grads.get(p.getKey());
                Tensor clipped = g.flatten(1, -1).mul(factor.unsqueeze(1)).sum(0).view(p.getValue().sizes().vec().get());
                Tensor noisy = clipped.add(torch.randn_like(p.getValue()).mul(new Scalar(NOISE * CLIP)));
                p.getValue().sub_(noisy.mul(new Scalar(LEARNING_RATE / batch)));
            }
        }
    }
}
