package dev.psg4j.conform;

import dev.psg4j.check.Loss;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;

import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.SharedModuleVector;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * A configuration built at one batch size: the Model, its batch and loss, and the layer kinds it
 * holds (torch.nn class names, what {@link dev.psg4j.check.GradSampler#supportsLayer} is asked).
 * Owns the Model ({@link #close}); the tensors belong to the scope they were made in.
 */
public record Instance(Model model, List<Tensor> inputs, List<Tensor> targets, int batchDim, int targetBatchDim,
                       Loss loss, List<String> layerKinds) implements AutoCloseable {
    private static final Set<String> CONTAINERS = Set.of("Sequential", "ModuleList", "ModuleDict");

    public Instance {
        inputs = List.copyOf(inputs);
        targets = List.copyOf(targets);
        layerKinds = List.copyOf(layerKinds);
    }

    /** The problem's module (in eval mode) as a Model; targets share the inputs' batch dimension. */
    public static Instance of(Problem problem) {
        problem.module().eval();
        return new Instance(Models.module(problem.module()), problem.inputs(), problem.targets(), problem.batchDim(),
                problem.batchDim(), problem.loss(), layerKinds(problem.module()));
    }

    /**
     * The layer kinds of a C++-frontend module, in order, each once: the module's own kind, or for
     * a Sequential (ModuleList, ModuleDict) those of its children, recursively. A layer's own
     * submodules (MultiheadAttention's out_proj) are part of it, not listed.
     */
    public static List<String> layerKinds(Module module) {
        Set<String> kinds = new LinkedHashSet<>();
        collect(module, kinds);
        return new ArrayList<>(kinds);
    }

    private static void collect(Module module, Set<String> kinds) {
        String kind = kind(module);
        if (!CONTAINERS.contains(kind)) {
            kinds.add(kind);
            return;
        }
        SharedModuleVector children = module.children();
        for (long k = 0; k < children.size(); k++) {
            collect(children.get(k), kinds);
        }
    }

    /** "torch::nn::Conv2dImpl" (or "torch::nn::MultiheadAttention") → "Conv2d"; another type keeps its own name. */
    static String kind(Module module) {
        String type = module instanceof SequentialImpl ? "torch::nn::SequentialImpl" : module.name().getString();
        String prefix = "torch::nn::";
        if (!type.startsWith(prefix) || type.length() == prefix.length()) {
            return type;
        }
        String kind = type.substring(prefix.length());
        return kind.endsWith("Impl") && kind.length() > 4 ? kind.substring(0, kind.length() - 4) : kind;
    }

    @Override
    public void close() {
        model.close();
    }
}
