package dev.psg4j.model;

import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.NativeCore.NativeModel;
import dev.psg4j.bridge.Natives;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;

import java.util.List;
import java.util.Map;

/**
 * A model psg4j can run: a TorchScript module, a C++-frontend module or a Java function (see
 * {@link Models}). Owns a native handle; close it when done. The objects it was made from (the
 * bytedeco module, the Java callback) must stay alive while it is used, and it keeps them
 * reachable itself.
 */
public final class Model implements AutoCloseable {
    private final NativeModel handle;
    private final List<Pointer> owned;
    @SuppressWarnings("unused") // held only to keep the caller's module reachable while native code uses it
    private final Object borrowed;
    private final Natives.CallbackFailure callbackFailure;

    /**
     * @param owned    native objects made for this model, freed by {@link #close()}
     * @param borrowed the caller's module, kept reachable while this model lives, never freed here
     */
    Model(NativeModel handle, List<Pointer> owned, Object borrowed, Natives.CallbackFailure callbackFailure) {
        this.handle = handle;
        this.owned = owned;
        this.borrowed = borrowed;
        this.callbackFailure = callbackFailure;
    }

    /** Where this model's Java forward records a throw, for {@link Natives#call(List, java.util.function.Supplier)}. */
    public Natives.CallbackFailure callbackFailure() {
        return callbackFailure;
    }

    /** The native handle, for engines and checks of this library. */
    public NativeModel handle() {
        if (handle.isNull()) {
            throw new IllegalStateException("this Model is closed");
        }
        return handle;
    }

    /** The trainable parameters in named_parameters() order: name → the parameter itself. */
    public Map<String, Tensor> trainableParameters() {
        try (var list = Natives.call(() -> NativeCore.trainable_parameters(handle()))) {
            return Natives.toMap(list);
        }
    }

    public String describe() {
        return Natives.call(() -> handle().describe());
    }

    @Override
    public String toString() {
        return describe();
    }

    @Override
    public void close() {
        handle.close();
        owned.forEach(Pointer::close);
    }
}
