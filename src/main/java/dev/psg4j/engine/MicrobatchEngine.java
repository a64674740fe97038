package dev.psg4j.engine;

import dev.psg4j.bridge.NativeCore;
import dev.psg4j.internal.NativeHandles;
import dev.psg4j.check.Batch;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.check.Reduction;
import dev.psg4j.model.Model;

import org.bytedeco.pytorch.Tensor;

import java.util.Map;

/** The microbatch reference as a grad sampler: tensors [B, *shape], computed natively. */
final class MicrobatchEngine implements GradSampler {
    @Override
    public String name() {
        return "microbatch";
    }

    @Override
    public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
        return NativeGradients.of(model, loss,
                lossHandle -> NativeCore.microbatch_gradients(NativeHandles.handle(model), NativeHandles.handle(batch), lossHandle, reduction.code()));
    }
}
