package dev.psg4j.check;

import dev.psg4j.model.Model;

import org.bytedeco.pytorch.Tensor;

import java.util.Map;

/**
 * The SPI a per-sample gradient engine implements to be verified (and benchmarked).
 *
 * <p>Contract: for every trainable parameter {@code p} of {@code model} (named as
 * {@link Model#trainableParameters()} names them) return a tensor {@code [B, *p.shape]} whose
 * entry {@code i} is the gradient of the loss of a batch holding only sample {@code i}, reduced
 * with {@code reduction} (for mean: the one-sample mean, i.e. B times the gradient of the batch
 * mean). The layout is batch-first whatever the input's batch dimension.
 *
 * <p>Ownership: the map and its tensors pass to the caller, which closes the tensors when done
 * ({@link PerSampleCheck} does once it has compared them). Return tensors made for the call; to
 * hand out one you keep, return a new handle onto it ({@code new Tensor(kept)}), which shares its
 * storage. A sampler may be called from several threads at once when checks share it.
 *
 * <p>What a sampler may use to compute on its own: {@link Model#frontendModule()} /
 * {@link Model#torchScriptModule()} (the bytedeco module the Model wraps), {@link Batch#inputs()} /
 * {@link Batch#targets()}, {@link Loss#apply} (the loss as a callable), and, for a chain of standard
 * layers, {@code dev.psg4j.engine.LayerCapture} (each layer's activations and backprops, as
 * Opacus's hooks see them). To be found by name ({@code --engine NAME}), register a
 * {@code dev.psg4j.engine.GradSamplerProvider}.
 */
public interface GradSampler {
    /** A short name for reports ("vmap", "opacus-file", "my-linear-sampler"). */
    String name();

    Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction);

    /**
     * Whether this sampler claims to handle layers of {@code layerKind}, torch.nn's class name
     * ("Linear", "Conv2d", "LSTM", "MultiheadAttention", ...). Conformance runs skip (and list as
     * skipped, not passed) every configuration with a layer this returns false for. Default: every kind.
     */
    default boolean supportsLayer(String layerKind) {
        return true;
    }
}
