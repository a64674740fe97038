package dev.psg4j.engine;

import dev.psg4j.BadInputException;
import dev.psg4j.internal.NativeHandles;
import dev.psg4j.bridge.CloseGuard;
import dev.psg4j.bridge.NativeCore.NamedTensorList;
import dev.psg4j.bridge.NativeCore.NativeLoss;
import dev.psg4j.bridge.Natives;
import dev.psg4j.check.Loss;
import dev.psg4j.model.Model;

import org.bytedeco.pytorch.Tensor;

import java.util.Map;
import java.util.function.BiConsumer;
import java.util.function.Function;

/** Runs a native engine over a model and a loss, with their callbacks' failures rethrown typed. */
final class NativeGradients {
    private NativeGradients() {
    }

    /** The gradients {@code engine} computes with a native handle of {@code loss}, as Java tensors the caller owns. */
    static Map<String, Tensor> of(Model model, Loss loss, Function<NativeLoss, NamedTensorList> engine) {
        try (CloseGuard.Use use = NativeHandles.use(model); NativeLoss lossHandle = NativeHandles.newHandle(loss);
             NamedTensorList grads = Natives.call(
                     () -> engine.apply(lossHandle))) {
            return Natives.toMap(grads);
        }
    }

    /**
     * Runs {@code engine}, which writes into {@code out}'s tensors (the caller's, each checked live
     * and named in errors as the buffer of its parameter); they stay the caller's.
     */
    static void into(Model model, Loss loss, Map<String, Tensor> out, BiConsumer<NativeLoss, NamedTensorList> engine) {
        BadInputException.requireNonNull(out, "out", "a map from each trainable parameter's name to a [B, *shape] tensor");
        try (CloseGuard.Use use = NativeHandles.use(model); NativeLoss lossHandle = NativeHandles.newHandle(loss);
             NamedTensorList buffers = Natives.namedList(out, "the per-sample gradient buffer for parameter")) {
            Natives.call(() -> {
                engine.accept(lossHandle, buffers);
                return null;
            });
        }
    }
}
