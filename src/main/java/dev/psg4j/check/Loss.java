package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.NativeCore.NativeLoss;
import dev.psg4j.bridge.Natives;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The loss whose per-sample gradients are checked. Built-ins follow Opacus: {@link #L1} against
 * zeros when there is no target (the default), {@link #MSE}, {@link #CROSS_ENTROPY} with
 * class-index targets (classes in dimension 1), {@link #SUM} of the outputs (divided by the batch
 * size for reduction mean). {@link #custom} takes a Java function; close a custom loss when done
 * with it to free its native callback (closing a built-in does nothing).
 */
public final class Loss implements AutoCloseable {
    public static final Loss L1 = new Loss("l1", 0, null);
    public static final Loss MSE = new Loss("mse", 1, null);
    public static final Loss CROSS_ENTROPY = new Loss("cross_entropy", 2, null);
    public static final Loss SUM = new Loss("sum", 3, null);

    private static final List<Loss> BUILT_IN = List.of(L1, MSE, CROSS_ENTROPY, SUM);

    private final String name;
    private final int code;
    private final LossFunction function;
    private NativeCore.LossCallback callback;

    private Loss(String name, int code, LossFunction function) {
        this.name = name;
        this.code = code;
        this.function = function;
    }

    /** A loss computed by Java code; see {@link LossFunction} for the contract. */
    public static Loss custom(String name, LossFunction function) {
        return new Loss(BadInputException.requireNonNull(name, "name", "a name for the loss, used in reports"), -1,
                BadInputException.requireNonNull(function, "function", "the loss, (output, targets, reduction) -> scalar"));
    }

    /** A built-in loss by its name: l1, mse, cross_entropy or sum. */
    public static Loss named(String name) {
        BadInputException.requireNonNull(name, "name", "one of l1, mse, cross_entropy, sum");
        String key = name.toLowerCase(Locale.ROOT).replace('-', '_');
        return BUILT_IN.stream().filter(l -> l.name.equals(key)).findFirst().orElseThrow(() ->
                new BadInputException("unknown loss '" + name + "': use one of l1, mse, cross_entropy, sum"));
    }

    public String name() {
        return name;
    }

    public boolean isCustom() {
        return function != null;
    }

    /** A native handle for this loss; the caller closes it. */
    NativeLoss newHandle() {
        if (function == null) {
            return Natives.call(() -> NativeCore.builtin_loss(code));
        }
        return Natives.call(() -> NativeCore.custom_loss(callback()));
    }

    /** The loss of a whole batch of {@code batchSize} samples, exactly as the reference computes it. */
    public Tensor apply(Tensor output, List<Tensor> targets, Reduction reduction, long batchSize) {
        try (NativeLoss handle = newHandle(); TensorVector t = Natives.vector(targets, "target")) {
            Tensor out = new Tensor();
            Natives.call(() -> {
                NativeCore.loss_value(handle, output, t, reduction.code(), batchSize, out);
                return null;
            });
            return out;
        }
    }

    private synchronized NativeCore.LossCallback callback() {
        if (callback == null) {
            callback = new NativeCore.LossCallback() {
                @Override
                public int call(long callScope, Pointer output, Pointer targets, int reduction, Pointer loss) {
                    try {
                        Tensor value = function.apply(new Tensor(output), Arrays.asList(new TensorVector(targets).get()),
                                Reduction.values()[reduction]);
                        new Tensor(loss).put(Natives.requireLiveResult(value, "the custom loss '" + name + "'"));
                        return 0;
                    } catch (Throwable t) {
                        Natives.recordCallbackFailure(callScope, t);
                        return 1;
                    }
                }
            };
        }
        return callback;
    }

    @Override
    public synchronized void close() {
        if (callback != null) {
            callback.close();
            callback = null;
        }
    }

    @Override
    public String toString() {
        return name;
    }
}
