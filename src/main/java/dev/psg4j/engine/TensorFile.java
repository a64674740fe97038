package dev.psg4j.engine;

import org.bytedeco.pytorch.Tensor;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The tensors of a file written by Python's torch.save, in file order, and the container that
 * held them: a lone tensor (one entry named ""), a tuple or list (entries "0", "1", ...) or a dict
 * (its keys).
 */
public record TensorFile(TensorContainer container, Map<String, Tensor> entries) {
    public TensorFile {
        container = container.intern();
        entries = Collections.unmodifiableMap(new LinkedHashMap<>(entries));
    }

    /** The tensors in file order. */
    public List<Tensor> tensors() {
        return List.copyOf(entries.values());
    }

    /** What the file held, for messages: "a tensor", "a tuple of 4 tensors", "a dict of 4 tensors". */
    public String describe() {
        if (container == TensorContainer.TENSOR) {
            return "a single tensor";
        }
        String kind = container.name().toLowerCase(Locale.ROOT);
        return "a " + kind + " of " + entries.size() + (entries.size() == 1 ? " tensor" : " tensors");
    }
}
