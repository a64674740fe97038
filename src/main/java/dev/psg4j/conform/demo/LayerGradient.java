package dev.psg4j.conform.demo;

import dev.psg4j.engine.CapturedLayer;

import org.bytedeco.pytorch.Tensor;

import java.util.Map;

/**
 * One layer kind's per-sample gradient from a layer's activations and backprops, as Opacus's
 * {@code grad_sample} functions compute it: local parameter name ("weight", "bias") → [B, *shape],
 * for the batch loss the capture differentiated (the caller rescales a mean loss).
 */
@FunctionalInterface
public interface LayerGradient {
    /**
     * @param layer      the captured use of the layer
     * @param batchDim   where the batch is in the activations and backprops
     * @param parameters the model's trainable parameters by name (for their shapes)
     */
    Map<String, Tensor> compute(CapturedLayer layer, int batchDim, Map<String, Tensor> parameters);
}
