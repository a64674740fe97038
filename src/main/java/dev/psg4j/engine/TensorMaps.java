package dev.psg4j.engine;

import dev.psg4j.BadInputException;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.NativeCore.NamedTensorList;
import dev.psg4j.bridge.Natives;
import dev.psg4j.internal.InputFiles;

import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.Map;

/** Tensors from files written by Python's torch.save. */
public final class TensorMaps {
    private TensorMaps() {
    }

    /**
     * Reads a file written by Python's torch.save: a tensor, a tuple or list of tensors or a dict
     * {name: tensor}, and says which it held. A missing, empty or unreadable file, a directory, a
     * pipe or device, a file larger than the memory available ({@link InputFiles}), a tensor on
     * the meta device (no data) is a BadInputException.
     */
    public static TensorFile read(Path file) {
        BadInputException.requireNonNull(file, "file", "the path of a file written by torch.save");
        InputFiles.requireReadable(file, "", "the file written by torch.save");
        try (NamedTensorList list = new NamedTensorList()) {
            TensorContainer container = Natives.call(() -> NativeCore.load_tensor_file(file.toString(), list));
            return new TensorFile(container, Natives.toMap(list));
        }
    }

    /**
     * The entries of {@link #read}, in file order: a tensor is one entry named "", a tuple or list
     * entries "0", "1", ..., a dict its keys.
     */
    public static Map<String, Tensor> load(Path file) {
        return read(file).entries();
    }
}
