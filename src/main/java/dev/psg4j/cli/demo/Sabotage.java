package dev.psg4j.cli.demo;

import dev.psg4j.check.Batch;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.check.Reduction;
import dev.psg4j.model.Model;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.BiFunction;

/**
 * Broken grad samplers derived from a correct one, each with one of the bugs per-sample gradient
 * code really has. They never modify the tensors the correct sampler returned.
 */
public final class Sabotage {
    private Sabotage() {
    }

    /** Forgets Opacus's ×B for reduction mean: gives the gradient of the batch-mean loss, split per sample. */
    public static GradSampler unscaledMean(GradSampler correct) {
        return derive(correct, "unscaled-mean", (grads, reduction) -> {
            if (reduction == Reduction.MEAN) {
                long b = grads.values().iterator().next().size(0);
                grads.replaceAll((name, g) -> g.div(new Scalar((double) b)));
            }
            return grads;
        });
    }

    /** Gives sample {@code i}'s gradient of {@code param} to sample {@code j} and vice versa. */
    public static GradSampler swapSamples(GradSampler correct, String param, int i, int j) {
        return derive(correct, "swapped-" + i + "-" + j, (grads, reduction) -> {
            Tensor g = grads.get(param).clone();
            Tensor first = g.select(0, i).clone();
            g.select(0, i).copy_(g.select(0, j));
            g.select(0, j).copy_(first);
            grads.put(param, g);
            return grads;
        });
    }

    /** Leaves {@code param} out (a sampler that forgot a parameter, e.g. the bias). */
    public static GradSampler drop(GradSampler correct, String param) {
        return derive(correct, "no-" + param, (grads, reduction) -> {
            grads.remove(param);
            return grads;
        });
    }

    /** Returns {@code param}'s per-sample gradient with its last two dimensions swapped ([B, in, out]). */
    public static GradSampler transpose(GradSampler correct, String param) {
        return derive(correct, "transposed-" + param, (grads, reduction) -> {
            Tensor g = grads.get(param);
            grads.put(param, g.transpose(g.dim() - 2, g.dim() - 1).contiguous());
            return grads;
        });
    }

    /** Adds {@code delta} to the first element of {@code param}'s gradient for {@code sample}. */
    public static GradSampler perturb(GradSampler correct, String param, int sample, double delta) {
        return derive(correct, "perturbed-" + param, (grads, reduction) -> {
            Tensor g = grads.get(param).clone();
            firstElement(g.select(0, sample)).add_(new Scalar(delta));
            grads.put(param, g);
            return grads;
        });
    }

    /** Puts a NaN in the first element of {@code param}'s gradient for {@code sample}. */
    public static GradSampler nan(GradSampler correct, String param, int sample) {
        return derive(correct, "nan-" + param, (grads, reduction) -> {
            Tensor g = grads.get(param).clone();
            firstElement(g.select(0, sample)).fill_(new Scalar(Double.NaN));
            grads.put(param, g);
            return grads;
        });
    }

    private static Tensor firstElement(Tensor t) {
        Tensor view = t;
        while (view.dim() > 0) {
            view = view.select(0, 0);
        }
        return view;
    }

    private static GradSampler derive(GradSampler correct, String bug,
                                      BiFunction<Map<String, Tensor>, Reduction, Map<String, Tensor>> breakIt) {
        String name = correct.name() + "/" + bug;
        return new GradSampler() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
                return breakIt.apply(new LinkedHashMap<>(correct.perSampleGradients(model, batch, loss, reduction)),
                        reduction);
            }
        };
    }
}
