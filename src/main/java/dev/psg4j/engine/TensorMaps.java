package dev.psg4j.engine;

import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.NativeCore.NamedTensorList;
import dev.psg4j.bridge.Natives;

import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Named tensors between the native core and Java maps, and from torch.save files. */
public final class TensorMaps {
    private TensorMaps() {
    }

    static Map<String, Tensor> toMap(NamedTensorList list) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (long k = 0; k < list.size(); k++) {
            Tensor t = new Tensor();
            list.tensor(k, t);
            out.put(list.name(k), t);
        }
        return out;
    }

    /**
     * Reads a file written by Python's torch.save: a tensor (one entry named ""), a tuple or list
     * of tensors (entries "0", "1", ...) or a dict {name: tensor}, in file order. A missing or
     * unreadable file is a BadInputException.
     */
    public static Map<String, Tensor> load(Path file) {
        try (NamedTensorList list = Natives.call(() -> NativeCore.load_tensor_file(file.toString()))) {
            return toMap(list);
        }
    }
}
