package dev.psg4j.bench;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.Map;

/**
 * The rest of a DP-SGD step once the per-sample gradients are known, as the {@code dp-step}
 * benchmarks time it: flat clipping of each sample's whole gradient at {@link #CLIP}, the clipped
 * sum, Gaussian noise of standard deviation σ·C ({@link #NOISE_MULTIPLIER}), and the update
 * θ -= lr·(sum + noise) / B in place on the model's own parameters (Opacus's formula).
 *
 * <p>The learning rate is 0: every operation of a step runs, but the parameters keep their values.
 * A moving model would, after a few hundred steps, put some sample's output within rounding of the
 * suite loss's kink (l1 against zeros), where two correct computations of that sample's gradient
 * may differ by a sign (seq at B = 32: step 377, the vmap engine and the reference 2.0 apart on one
 * element of the last bias) — a property of the loss, not a wrong gradient, and not what a timing
 * should run into.
 */
final class DpSgdStep {
    static final double CLIP = 1.0;
    static final double NOISE_MULTIPLIER = 1.0;
    static final double LEARNING_RATE = 0.0;

    private DpSgdStep() {
    }

    /** One step on {@code parameters} (the model's tensors, updated in place) from {@code perSample} ([B, *shape] each). */
    static void apply(Map<String, Tensor> parameters, Map<String, Tensor> perSample, long batchSize) {
        try (NoGradGuard noGrad = new NoGradGuard()) {
            Tensor squares = null;
            for (Tensor g : perSample.values()) {
                // ‖g_{i,p}‖² per sample without a [B, |θ_p|] temporary (a reduction, not square() then sum())
                Tensor norms = torch.linalg_vector_norm(g.flatten(1, -1), new Scalar(2.0), new long[] {1}, false,
                        new ScalarTypeOptional());
                Tensor s = norms.square();
                squares = squares == null ? s : squares.add(s);
            }
            if (squares == null) {
                return;
            }
            Tensor factor = squares.sqrt().add(new Scalar(1e-6)).reciprocal().mul(new Scalar(CLIP))
                    .clamp_max(new Scalar(1.0));
            for (Map.Entry<String, Tensor> p : parameters.entrySet()) {
                Tensor g = perSample.get(p.getKey());
                if (g == null) {
                    continue;
                }
                Tensor clippedSum = factor.unsqueeze(0).matmul(g.flatten(1, -1)).view(p.getValue().sizes().vec().get());
                Tensor noisy = clippedSum.add(torch.randn_like(p.getValue()).mul(new Scalar(NOISE_MULTIPLIER * CLIP)));
                p.getValue().sub_(noisy.mul(new Scalar(LEARNING_RATE / batchSize)));
            }
        }
    }
}
