package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.model.Model;

import org.bytedeco.pytorch.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The norms-only variant of {@link GradSampler}: a sampler that computes per-sample
 * gradient norms without materializing the gradients (ghost / fast gradient clipping, Opacus's
 * {@code per_sample_gradient_norms}), verified by {@link PerSampleCheck#runNorms}.
 *
 * <p>Contract: return either one tensor {@code [B]} under the key {@link #WHOLE_GRADIENT} (""),
 * entry i the L2 norm of sample i's whole per-sample gradient (every trainable parameter, a tied
 * one once: sqrt(Σ_p ‖g_{i,p}‖²)), or {@code {parameter name: Tensor[B]}} with one entry per
 * trainable parameter (named as {@link Model#trainableParameters()} names them, or by an alias),
 * the norm of that parameter's per-sample gradient. Per-sample gradients follow
 * {@link GradSampler}'s convention (for mean: the one-sample mean loss's, i.e. B times the
 * gradient of the batch mean).
 *
 * <p>Ownership: as {@link GradSampler}: the map and its tensors pass to the caller, which closes
 * them once compared.
 */
public interface NormSampler {
    /** The key of the whole-gradient norms: the name a lone tensor of a torch.save file gets. */
    String WHOLE_GRADIENT = "";

    /** A short name for reports. */
    String name();

    Map<String, Tensor> perSampleNorms(Model model, Batch batch, Loss loss, Reduction reduction);

    /**
     * Norms computed elsewhere (Opacus's ghost clipping, a file) for one reduction: a map as the
     * contract says, returned as new handles each call ({@code norms} stay yours); another
     * reduction is a BadInputException.
     */
    static NormSampler precomputed(String name, Reduction reduction, Map<String, Tensor> norms) {
        BadInputException.requireNonNull(name, "name", "a name for the candidate, used in reports");
        BadInputException.requireNonNull(reduction, "reduction", "the reduction the norms are for");
        BadInputException.requireNonNull(norms, "norms", "{\"\": Tensor[B]} or {parameter name: Tensor[B]}");
        Map<String, Tensor> copy = new LinkedHashMap<>(norms);
        return new NormSampler() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Map<String, Tensor> perSampleNorms(Model model, Batch batch, Loss loss, Reduction asked) {
                return Precomputed.handles(name, reduction, asked, "norms", copy);
            }
        };
    }
}
