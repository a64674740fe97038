package dev.psg4j.engine;

import dev.psg4j.BadInputException;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Reduction;

import org.bytedeco.pytorch.Tensor;

import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Collectors;

/** The grad samplers psg4j ships: the vmap engine, the microbatch reference, precomputed gradients. */
public final class Engines {
    private Engines() {
    }

    /**
     * The vmap engine: vmap(grad) in native code, the whole batch in one vectorized pass, random
     * ops refused. Tune with {@link VmapEngine#chunkSize} and {@link VmapEngine#randomness}.
     */
    public static VmapEngine vmap() {
        return new VmapEngine(0, Randomness.ERROR);
    }

    /**
     * The reference itself: every sample alone, natively, the samples spread over as many psg4j
     * workers as the calling thread's LibTorch intra-op count (torch.set_num_threads), each running
     * its samples' ops on one intra-op thread, so the gradients are the same at every count.
     */
    public static GradSampler microbatch() {
        return new MicrobatchEngine();
    }

    /**
     * Gradients computed elsewhere (Opacus, torch.func, a file) for one reduction: returns them as
     * they are, as new handles onto the same tensors each call (the caller of the sampler owns the
     * handles; {@code gradients} stay yours); asking for another reduction is a BadInputException.
     */
    public static GradSampler precomputed(String name, Reduction reduction, Map<String, Tensor> gradients) {
        BadInputException.requireNonNull(reduction, "reduction", "the reduction the gradients are for, "
                + "Reduction.SUM or Reduction.MEAN");
        BadInputException.requireNonNull(gradients, "gradients", "a map {parameter name: Tensor[B, *shape]}");
        return precomputed(name, Map.of(reduction, gradients));
    }

    /**
     * Gradients computed elsewhere for several reductions (a training step's, checked for sum and
     * mean at once): as {@link #precomputed(String, Reduction, Map)}, each reduction's map handed
     * out as new handles each call; a reduction not in {@code byReduction} is a BadInputException.
     */
    public static GradSampler precomputed(String name, Map<Reduction, Map<String, Tensor>> byReduction) {
        BadInputException.requireNonNull(name, "name", "a name for the candidate, used in reports");
        BadInputException.requireNonNull(byReduction, "byReduction",
                "a map {Reduction: {parameter name: Tensor[B, *shape]}}");
        if (byReduction.isEmpty()) {
            throw new BadInputException("the candidate '" + name + "' holds no reduction's gradients: give at least "
                    + "one of Reduction.SUM and Reduction.MEAN");
        }
        Map<Reduction, Map<String, Tensor>> copies = new EnumMap<>(Reduction.class);
        byReduction.forEach((reduction, gradients) -> {
            BadInputException.requireNonNull(gradients, "gradients", "a map {parameter name: Tensor[B, *shape]} "
                    + "for reduction " + reduction.label());
            copies.put(reduction, new LinkedHashMap<>(gradients));
        });
        return new GradSampler() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Map<String, Tensor> perSampleGradients(dev.psg4j.model.Model model, dev.psg4j.check.Batch batch,
                                                          dev.psg4j.check.Loss loss, Reduction asked) {
                Map<String, Tensor> gradients = copies.get(asked);
                if (gradients == null) {
                    throw new BadInputException("the candidate '" + name + "' holds gradients for reduction "
                            + copies.keySet().stream().map(Reduction::label).collect(Collectors.joining(" and "))
                            + " only, but reduction " + asked.label() + " was asked: check "
                            + (copies.size() == 1 ? "one reduction (--reduction "
                            + copies.keySet().iterator().next().label() + ")" : "those reductions"));
                }
                Map<String, Tensor> handles = new LinkedHashMap<>();
                gradients.forEach((param, t) -> handles.put(param, t == null || t.isNull() ? t : new Tensor(t)));
                return handles;
            }
        };
    }
}
