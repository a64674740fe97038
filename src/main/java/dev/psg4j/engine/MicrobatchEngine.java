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

/**
 * The microbatch reference as a grad sampler: tensors [B, *shape], computed natively on the batch's
 * device (device-generic: on CUDA the gradients stay there).
 */
final class MicrobatchEngine implements GradSampler {
    @Override
    public String name() {
        return "microbatch";
    }

    @Override
    public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
        // The default spread: the calling thread's intra-op count of CPU workers, CUDA streams on a GPU.
        try (NativeCore.ReferenceSpread spread = new NativeCore.ReferenceSpread(0, false)) {
            return NativeGradients.of(model, loss, lossHandle -> NativeCore.microbatch_gradients(
                    NativeHandles.handle(model), NativeHandles.handle(batch), lossHandle, reduction.code(), spread));
        }
    }
}
