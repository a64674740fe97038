package dev.psg4j.engine;

import dev.psg4j.BadInputException;
import dev.psg4j.internal.NativeHandles;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.check.Batch;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.check.Reduction;
import dev.psg4j.model.Model;
import java.util.Locale;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;

/**
 * Per-sample gradients as {@code torch.func.vmap(grad(loss ∘ functional_call))}, computed natively
 * from ATen's functorch primitives: one vectorized pass per chunk instead of one pass per sample.
 * Immutable; the withers return a new engine.
 *
 * <p>Where vmap cannot run the model (an op with no batching rule, {@code .item()}, data-dependent
 * control flow, an in-place write into an input, a random op under {@link Randomness#ERROR}) it
 * throws an {@link dev.psg4j.UnsupportedModelException} naming the op; the microbatch engine runs
 * such models. A model must not be used by two engines at the same time from different threads:
 * its parameters are swapped for the engine's during a pass.
 */
public final class VmapEngine implements GradSampler {
    private final long chunkSize;
    private final Randomness randomness;

    VmapEngine(long chunkSize, Randomness randomness) {
        this.chunkSize = chunkSize;
        this.randomness = randomness;
    }

    /**
     * At most {@code samples} samples per vectorized pass, like {@code torch.func.vmap(chunk_size=…)}:
     * memory for intermediate values grows with it. 0 (the default) means the whole batch at once.
     */
    public VmapEngine chunkSize(long samples) {
        if (samples < 0) {
            throw new BadInputException("chunk size must be positive, or 0 for the whole batch; got " + samples);
        }
        return new VmapEngine(samples, randomness);
    }

    /** What random ops do; default {@link Randomness#ERROR}. */
    public VmapEngine randomness(Randomness mode) {
        return new VmapEngine(chunkSize, BadInputException.requireNonNull(mode, "randomness",
                "Randomness.ERROR, DIFFERENT or SAME"));
    }

    public long chunkSize() {
        return chunkSize;
    }

    public Randomness randomness() {
        return randomness;
    }

    @Override
    public String name() {
        return "vmap";
    }

    @Override
    public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
        return NativeGradients.of(model, loss, lossHandle -> NativeCore.vmap_gradients(NativeHandles.handle(model),
                NativeHandles.handle(batch), lossHandle, reduction.code(), chunkSize, randomness.code()));
    }

    /**
     * {@link #perSampleGradients} written into buffers the caller owns and reuses from call to
     * call: a training loop then allocates nothing for the results and faults in no fresh pages
     * (at B = 256 those cost more than computing the gradients).
     *
     * <p>{@code out} maps the name of every trainable parameter {@code p} (as
     * {@link Model#trainableParameters()} names them), and nothing else, to a contiguous tensor
     * {@code [B, *p.shape]} of {@code p}'s dtype and device that does not require grad, no two of
     * them sharing memory; otherwise a {@link BadInputException} names the parameter, thrown
     * before anything is written. The values written equal {@link #perSampleGradients}'s.
     *
     * <p>Ownership: {@code out} and its tensors stay the caller's. psg4j writes every element of
     * each, keeps no reference once this returns and closes nothing; the caller closes them when
     * done (whoever creates a native object frees it).
     */
    public void perSampleGradientsInto(Model model, Batch batch, Loss loss, Reduction reduction,
                                       Map<String, Tensor> out) {
        NativeGradients.into(model, loss, out, (lossHandle, buffers) -> NativeCore.vmap_gradients_into(
                NativeHandles.handle(model), NativeHandles.handle(batch), lossHandle, reduction.code(), chunkSize, randomness.code(), buffers));
    }

    @Override
    public String toString() {
        return "vmap(chunkSize=" + chunkSize + ", randomness=" + randomness.name().toLowerCase(Locale.ROOT) + ")";
    }
}
