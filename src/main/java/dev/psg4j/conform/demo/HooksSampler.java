package dev.psg4j.conform.demo;

import dev.psg4j.UnsupportedModelException;
import dev.psg4j.check.Batch;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.check.Reduction;
import dev.psg4j.engine.CapturedLayer;
import dev.psg4j.engine.LayerCapture;
import dev.psg4j.model.Model;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * A grad sampler written the way Opacus's hooks are: one {@link LayerGradient} per layer kind (a
 * registry, one entry per kind), applied to each captured layer use of a {@link LayerCapture},
 * the uses of a layer used twice summed, times B for a mean loss. It claims
 * ({@link #supportsLayer}) exactly the kinds it has a gradient for plus the parameter-free layers
 * it can pass through, so conformance runs skip the rest.
 */
public final class HooksSampler implements GradSampler {
    /** Layers without parameters that a chain may hold around the ones with a rule. */
    public static final Set<String> PARAMETER_FREE = Set.of("ReLU", "Tanh", "Sigmoid", "GELU", "Flatten", "Identity",
            "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d");

    private final String name;
    private final Map<String, LayerGradient> rules;
    private final boolean keepLastUse;

    private HooksSampler(String name, Map<String, LayerGradient> rules, boolean keepLastUse) {
        this.name = name;
        this.rules = Map.copyOf(rules);
        this.keepLastUse = keepLastUse;
    }

    /** A sampler named {@code name} with these rules (kind → gradient), summing a layer's uses. */
    public static HooksSampler of(String name, Map<String, LayerGradient> rules) {
        return new HooksSampler(name, rules, false);
    }

    /** This sampler, broken: a layer used twice gets the gradient of its last use only (the others are overwritten). */
    public HooksSampler keepingLastUse(String newName) {
        return new HooksSampler(newName, rules, true);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public boolean supportsLayer(String layerKind) {
        return rules.containsKey(layerKind) || PARAMETER_FREE.contains(layerKind);
    }

    @Override
    public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
        try (PointerScope scope = new PointerScope();
             LayerCapture capture = LayerCapture.of(model, batch, loss, reduction)) {
            Map<String, Tensor> parameters = model.trainableParameters();
            Scalar scale = new Scalar(reduction == Reduction.MEAN ? (double) batch.size() : 1.0);
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (CapturedLayer layer : capture.layers()) {
                LayerGradient rule = rules.get(layer.kind());
                if (rule == null) {
                    throw new UnsupportedModelException(name + " has no per-sample gradient for " + layer.kind()
                            + " (layer " + layer.name() + "): it handles " + String.join(", ", rules.keySet()), null);
                }
                rule.compute(layer, batch.batchDim(), parameters).forEach((local, gradient) -> {
                    String param = layer.parameterName(local);
                    if (param != null) {
                        Tensor scaled = gradient.mul(scale);
                        if (keepLastUse) {
                            out.put(param, scaled);
                        } else {
                            out.merge(param, scaled, Tensor::add);
                        }
                    }
                });
            }
            out.values().forEach(Tensor::retainReference);
            return out;
        }
    }

    @Override
    public String toString() {
        return name;
    }
}
