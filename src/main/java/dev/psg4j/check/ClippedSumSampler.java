package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.model.Model;

import org.bytedeco.pytorch.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a DP optimizer aggregates before it adds noise, verified by
 * {@link PerSampleCheck#runClippedSum}: {@code {parameter name: Tensor[*shape]}}, for every
 * trainable parameter (a tied one once, by any of its names) the clipped sum Σᵢ fᵢ·gᵢ over the
 * batch's samples, with the factors of {@link Clipping} (Opacus's {@code p.summed_grad}: no noise,
 * no division by B). Per-sample gradients follow {@link GradSampler}'s convention.
 *
 * <p>Ownership: as {@link GradSampler}: the map and its tensors pass to the caller.
 */
public interface ClippedSumSampler {
    /** A short name for reports. */
    String name();

    Map<String, Tensor> clippedSum(Model model, Batch batch, Loss loss, Reduction reduction, Clipping clipping);

    /**
     * A clipped sum computed elsewhere (Opacus's DPOptimizer with noise_multiplier=0, a file) for
     * one reduction, returned as new handles each call ({@code sum} stays yours); another
     * reduction is a BadInputException.
     */
    static ClippedSumSampler precomputed(String name, Reduction reduction, Map<String, Tensor> sum) {
        BadInputException.requireNonNull(name, "name", "a name for the candidate, used in reports");
        BadInputException.requireNonNull(reduction, "reduction", "the reduction the sum is for");
        BadInputException.requireNonNull(sum, "sum", "{parameter name: Tensor[*shape]}");
        Map<String, Tensor> copy = new LinkedHashMap<>(sum);
        return new ClippedSumSampler() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Map<String, Tensor> clippedSum(Model model, Batch batch, Loss loss, Reduction asked,
                                                  Clipping clipping) {
                return Precomputed.handles(name, reduction, asked, "clipped sum", copy);
            }
        };
    }
}
