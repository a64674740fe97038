package dev.psg4j.engine;

import org.bytedeco.javacpp.annotation.Namespace;

/**
 * What a torch.save file held at its top level: the Java side of {@code psg4j::TensorContainer}
 * (tensor_io.h), which JavaCPP maps across the bridge by {@link #value}. An instance the bridge
 * returns is not one of the constants: use {@link #intern()}.
 */
@Namespace("psg4j")
public enum TensorContainer {
    TENSOR(0), TUPLE(1), LIST(2), DICT(3);

    public final int value;

    TensorContainer(int value) {
        this.value = value;
    }

    TensorContainer(TensorContainer e) {
        this.value = e.value;
    }

    /** The constant with this {@link #value}. */
    public TensorContainer intern() {
        for (TensorContainer e : values()) {
            if (e.value == value) {
                return e;
            }
        }
        return this;
    }

    @Override
    public String toString() {
        return intern().name();
    }
}
