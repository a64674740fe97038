package com.example.hookslinear;

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
 * A grad sampler written outside psg4j, the way Opacus's grad_sample/linear.py is: per Linear layer,
 * grad_W[n] = G[n]^T A[n] and grad_b[n] = sum of G[n] over the middle dimensions, from the layer's
 * activations A and backprops G (psg4j's LayerCapture), times B for a mean loss. The batch is where the
 * data has it (batch.batchDim(): 1 for time-first input).
 */
public final class HooksLinearSampler implements GradSampler {
    private static final Set<String> PARAMETER_FREE = Set.of("ReLU", "GELU", "Tanh", "Sigmoid", "Flatten", "Identity",
            "Dropout", "MaxPool1d", "MaxPool2d", "AvgPool2d");

    @Override
    public String name() {
        return "example-hooks-linear";
    }

    @Override
    public boolean supportsLayer(String layerKind) {
        return layerKind.equals("Linear") || PARAMETER_FREE.contains(layerKind);
    }

    @Override
    public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
        try (PointerScope scope = new PointerScope();
             LayerCapture capture = LayerCapture.of(model, batch, loss, reduction)) {
            Scalar scale = new Scalar(reduction == Reduction.MEAN ? (double) batch.size() : 1.0);
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (CapturedLayer layer : capture.layers()) {
                if (!layer.kind().equals("Linear")) {
                    throw new UnsupportedModelException("example-hooks-linear handles Linear layers only, not "
                            + layer.kind() + " (layer " + layer.name() + ")", null);
                }
                Tensor a = layer.activations().movedim(batch.batchDim(), 0);
                Tensor g = layer.backprops().movedim(batch.batchDim(), 0);
                long n = a.size(0);
                Tensor a3 = a.reshape(n, -1, a.size(-1));
                Tensor g3 = g.reshape(n, -1, g.size(-1));
                accumulate(out, layer.parameterName("weight"), g3.transpose(1, 2).bmm(a3).mul(scale));
                accumulate(out, layer.parameterName("bias"), g3.sum(1).mul(scale));
            }
            out.values().forEach(Tensor::retainReference);
            return out;
        }
    }

    /** A module used twice contributes once per use: the per-sample gradient is the sum. */
    private static void accumulate(Map<String, Tensor> out, String param, Tensor gradient) {
        if (param != null) {
            out.merge(param, gradient, Tensor::add);
        }
    }
}
