package dev.psg4j.engine;

import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.NativeCore.NamedTensorList;
import dev.psg4j.bridge.NativeCore.NativeLoss;
import dev.psg4j.bridge.Natives;
import dev.psg4j.check.Batch;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.check.Reduction;
import dev.psg4j.model.Model;

import org.bytedeco.pytorch.Tensor;

import java.util.List;
import java.util.Map;

/** The microbatch reference as a grad sampler: tensors [B, *shape], computed natively. */
final class MicrobatchEngine implements GradSampler {
    @Override
    public String name() {
        return "microbatch";
    }

    @Override
    public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
        try (NativeLoss lossHandle = loss.newHandle();
             NamedTensorList grads = Natives.call(List.of(model.callbackFailure(), loss.callbackFailure()),
                     () -> NativeCore.microbatch_gradients(model.handle(), batch.handle(), lossHandle,
                             reduction.code()))) {
            return Natives.toMap(grads);
        }
    }
}
