package dev.psg4j.engine;

import com.fasterxml.jackson.annotation.JsonIgnore;

import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;

import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * One use of one parameterized layer in a {@link LayerCapture}, as Opacus's hooks see it: what a
 * forward hook gets ({@link #activations}, the layer's input) and what a backward hook gets
 * ({@link #backprops}, the gradient of the batch loss with respect to the layer's output), in the
 * layout the model gives them (the batch is dimension 0 only when the data is batch-first).
 *
 * <p>The tensors belong to the {@link LayerCapture}, which frees them when it is closed; keep a
 * result past that with {@code new Tensor(t)} or a copy, and close that yourself.
 *
 * @param name       the layer's dotted path in the model ("0", "encoder.1")
 * @param kind       torch.nn's class name of the layer ("Linear", "Conv2d", "Embedding", ...)
 * @param use        0 for a layer's first use in the forward, 1 for its second (a module used twice), ...
 * @param parameters the layer's own trainable parameters: local name ("weight") → the model's name
 *                   ("0.weight", the first name of a tied parameter); frozen ones are left out
 * @param options    the options of the layer's kind that its per-sample gradient depends on
 * @param module     the C++-frontend layer itself, when the model is a C++-frontend module (its
 *                   {@code asConv2d()}, ... give the typed layer); empty for TorchScript models
 */
public record CapturedLayer(String name, String kind, int use, Map<String, String> parameters, LayerOptions options,
                            @JsonIgnore Tensor activations, @JsonIgnore Tensor backprops,
                            @JsonIgnore Optional<Module> module) {
    public CapturedLayer {
        parameters = Map.copyOf(parameters);
    }

    /** The model's name of this layer's parameter {@code local} ("weight"), or null when it has none or it is frozen. */
    public String parameterName(String local) {
        return parameters.get(local);
    }

    /**
     * The options of a layer kind that a grad sampler needs: for Conv, per spatial dimension;
     * for Embedding, the padding index; for LayerNorm, the normalized shape and eps.
     *
     * @param exactPadding false for padding 'same' or a padding mode other than zeros
     */
    public record LayerOptions(List<Long> stride, List<Long> padding, List<Long> dilation, long groups,
                               boolean exactPadding, Optional<Long> paddingIdx, List<Long> normalizedShape,
                               double eps, boolean training) {
        public LayerOptions {
            stride = List.copyOf(stride);
            padding = List.copyOf(padding);
            dilation = List.copyOf(dilation);
            normalizedShape = List.copyOf(normalizedShape);
        }
    }
}
