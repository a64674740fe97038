package dev.psg4j.bridge;

import dev.psg4j.BadInputException;
import dev.psg4j.ModelExecutionException;
import dev.psg4j.Psg4jException;
import dev.psg4j.UnsupportedModelException;

import org.bytedeco.pytorch.StringVector;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Calls into {@link NativeCore} and turns its errors into psg4j's typed exceptions. The native
 * side prefixes every message with {@code psg4j:<kind>:}; a Java callback's own exception is
 * rethrown as it was.
 */
public final class Natives {
    private static final String PREFIX = "psg4j:";

    private Natives() {
    }

    /**
     * Why CUDA is unusable in this process although bytedeco's GPU natives are on the class path
     * (their CUDA libraries failed to load: the cause, and what to add), or empty: CPU natives, or
     * the GPU natives loaded. Issue 11; the device parser puts it first in its message.
     */
    public static java.util.Optional<String> cudaLoadFailure() {
        return java.util.Optional.empty();
    }

    /** Holds the first exception the Java callbacks of one model or loss threw, until taken. */
    public static final class CallbackFailure {
        private Throwable first;

        public synchronized void record(Throwable t) {
            if (first == null) {
                first = t;
            }
        }

        synchronized Throwable take() {
            Throwable t = first;
            first = null;
            return t;
        }
    }

    public static <T> T call(Supplier<T> body) {
        return call(List.of(), body);
    }

    /**
     * Runs {@code body}; if a callback of {@code callbacks} threw, rethrows that exception, unless
     * the native side says the engine cannot run the model, which becomes an
     * {@link UnsupportedModelException} caused by it. Failures of callbacks that the native side
     * recovered from (an engine retrying another way) are dropped.
     */
    public static <T> T call(List<CallbackFailure> callbacks, Supplier<T> body) {
        NativeCore.load();
        try {
            T result = body.get();
            callbacks.forEach(CallbackFailure::take);
            return result;
        } catch (RuntimeException e) {
            Throwable callbackFailure = null;
            for (CallbackFailure c : callbacks) {
                Throwable t = c.take();
                if (callbackFailure == null) {
                    callbackFailure = t;
                }
            }
            RuntimeException nativeFailure = translate(e);
            if (nativeFailure instanceof UnsupportedModelException unsupported && callbackFailure != null) {
                throw new UnsupportedModelException(unsupported.getMessage() + " (the Java code threw: "
                        + callbackFailure + ")", callbackFailure);
            }
            if (callbackFailure != null) {
                throw rethrowable(callbackFailure);
            }
            throw nativeFailure;
        }
    }

    private static RuntimeException rethrowable(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error err) {
            throw err;
        }
        return new ModelExecutionException("a Java callback threw: " + t, t);
    }

    /**
     * A native vector of {@code tensors}, refusing null or freed ones (which would crash in native
     * code) with a BadInputException naming {@code what}.
     */
    public static TensorVector vector(Collection<Tensor> tensors, String what) {
        return new TensorVector(requireLive(tensors, what).toArray(Tensor[]::new));
    }

    /**
     * {@code tensors}, once each is known to be neither null nor freed (closed): otherwise a
     * BadInputException naming the {@code what} and its position, and what to pass instead.
     */
    public static <C extends Collection<Tensor>> C requireLive(C tensors, String what) {
        BadInputException.requireNonNull(tensors, what + "s", "a list of tensors (an empty one where there are none)");
        int k = 0;
        for (Tensor t : tensors) {
            requireLive(t, what + " " + k++);
        }
        return tensors;
    }

    /** {@code tensor}, unless it is null or freed (closed): then a BadInputException naming it as {@code label}. */
    public static Tensor requireLive(Tensor tensor, String label) {
        if (tensor == null) {
            throw new BadInputException(label + " is null: pass a tensor");
        }
        if (tensor.isNull()) {
            throw new BadInputException(label + " was freed (closed) before psg4j took it: pass live tensors, and "
                    + "close them only after build() (or when done with them)");
        }
        return tensor;
    }

    /**
     * {@code result} of a Java callback ({@code what}), refused unless it is a live, defined tensor:
     * a closed one would be a null pointer in native code.
     */
    public static Tensor requireLiveResult(Tensor result, String what) {
        String problem = result == null ? "null" : result.isNull() ? "a closed (freed) tensor"
                : !result.defined() ? "an undefined tensor" : null;
        if (problem != null) {
            throw new ModelExecutionException(what + " returned " + problem + ": return a live tensor (one not "
                    + "closed, e.g. not made in a try-with-resources block that has ended)", null);
        }
        return result;
    }

    /** Native name and tensor vectors of {@code named}, index-aligned, each tensor checked live by name. */
    public static NativeCore.NamedTensorList namedList(Map<String, Tensor> named, String what) {
        named.forEach((name, tensor) -> requireLive(tensor, what + " '" + name + "'"));
        try (StringVector names = new StringVector(named.keySet().toArray(String[]::new));
             TensorVector tensors = new TensorVector(named.values().toArray(Tensor[]::new))) {
            return call(() -> NativeCore.named_tensor_list(names, tensors));
        }
    }

    /**
     * The entries of a native name → tensor list, in order, as new Java tensor handles sharing
     * their storage: the caller owns them (see {@link #closeAll}).
     */
    public static Map<String, Tensor> toMap(NativeCore.NamedTensorList list) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (long k = 0; k < list.size(); k++) {
            Tensor t = new Tensor();
            list.tensor(k, t);
            out.put(list.name(k), t);
        }
        return out;
    }

    /** Closes every tensor handle of {@code tensors} (a map made by {@link #toMap}, or handed over like one). */
    public static void closeAll(Map<String, Tensor> tensors) {
        tensors.values().forEach(t -> {
            if (t != null) {
                t.close();
            }
        });
    }

    static RuntimeException translate(RuntimeException e) {
        String message = e.getMessage();
        if (e instanceof Psg4jException || message == null || !message.startsWith(PREFIX)) {
            return e;
        }
        int colon = message.indexOf(':', PREFIX.length());
        String kind = message.substring(PREFIX.length(), colon);
        String text = message.substring(colon + 1);
        return switch (kind) {
            case "bad_input" -> new BadInputException(text);
            case "unsupported" -> new UnsupportedModelException(text, null);
            default -> new ModelExecutionException(text, null);
        };
    }
}
