package dev.psg4j.engine;

import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.NativeCore.NamedTensorList;
import dev.psg4j.bridge.Natives;

import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.Map;

/** Tensors from files written by Python's torch.save. */
public final class TensorMaps {
    private TensorMaps() {
    }

    /**
     * Reads a file written by Python's torch.save: a tensor (one entry named ""), a tuple or list
     * of tensors (entries "0", "1", ...) or a dict {name: tensor}, in file order. A missing or
     * unreadable file is a BadInputException.
     */
    public static Map<String, Tensor> load(Path file) {
        try (NamedTensorList list = Natives.call(() -> NativeCore.load_tensor_file(file.toString()))) {
            return Natives.toMap(list);
        }
    }
}
