package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.NativeCore.NativeBatch;
import dev.psg4j.bridge.Natives;
import dev.psg4j.internal.NativeHandles;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.BiConsumer;

/**
 * The samples of a check: the model's inputs (several for multi-input models), the loss targets
 * (possibly none) and the batch dimension of each. Validated on creation: an empty batch, a batch
 * dimension out of range or inputs whose batch sizes differ are a BadInputException. The batch
 * holds its own references to the tensors: the caller may close theirs once it is made.
 */
public final class Batch implements AutoCloseable {
    private final NativeBatch handle;
    private final List<Tensor> inputs;
    private final List<Tensor> targets;
    private final int batchDim;
    private final int targetBatchDim;
    private final long size;
    private final String device;

    static {
        // The check package's handles, for psg4j's engines in other packages (not API).
        NativeHandles.install(new NativeHandles.CheckAccess() {
            @Override
            public NativeBatch handle(Batch batch) {
                return batch.handle();
            }

            @Override
            public NativeCore.NativeLoss newHandle(Loss loss) {
                return loss.newHandle();
            }
        });
    }

    public Batch(List<Tensor> inputs, List<Tensor> targets, int batchDim, int targetBatchDim) {
        this(inputs, targets, batchDim, targetBatchDim, "");
    }

    /**
     * A batch on {@code device} ("cpu", "cuda", "cuda:N"; "" keeps the tensors where they are):
     * each input and target not there is moved (copied) onto it, and the batch holds the copies.
     * An unknown or unusable device is a BadInputException.
     */
    public Batch(List<Tensor> inputs, List<Tensor> targets, int batchDim, int targetBatchDim, String device) {
        this.batchDim = batchDim;
        this.targetBatchDim = targetBatchDim;
        BadInputException.requireNonNull(device, "device", "\"cpu\", \"cuda\", \"cuda:N\" or \"\" (where the tensors are)");
        String on = device.isEmpty() ? "" : Devices.canonical(device);
        try (TensorVector in = Natives.vector(inputs, "input");
             TensorVector tg = Natives.vector(targets, "target")) {
            this.handle = Natives.call(() -> NativeCore.make_batch(in, tg, batchDim, targetBatchDim, on));
        }
        this.size = handle.size();
        this.inputs = own(handle.input_count(), handle::input);
        this.targets = own(handle.target_count(), handle::target);
        this.device = Devices.of(this.inputs.get(0));
    }

    public static Batch of(Tensor... inputs) {
        return new Batch(Arrays.asList(BadInputException.requireNonNull(inputs, "inputs", "one tensor, or one per "
                + "forward argument")), List.of(), 0, 0);
    }

    /** Java tensors onto the native batch's own references, so none depends on the caller's. */
    private static List<Tensor> own(long count, BiConsumer<Long, Tensor> fill) {
        List<Tensor> out = new ArrayList<>();
        for (long k = 0; k < count; k++) {
            Tensor t = new Tensor();
            fill.accept(k, t);
            out.add(t);
        }
        return List.copyOf(out);
    }

    /** The inputs, as this batch holds them (valid until it is closed). */
    public List<Tensor> inputs() {
        return inputs;
    }

    /** The targets, as this batch holds them (valid until it is closed). */
    public List<Tensor> targets() {
        return targets;
    }

    public int batchDim() {
        return batchDim;
    }

    public int targetBatchDim() {
        return targetBatchDim;
    }

    /** B, the number of samples. */
    public long size() {
        return size;
    }

    /** The device of the first input, as LibTorch names it ("cpu", "cuda:0"). */
    public String device() {
        return device;
    }

    /** The native batch, for engines and checks of this library. */
    NativeBatch handle() {
        if (handle.isNull()) {  // freed by close()
            throw new IllegalStateException("this Batch is closed: make a new one");
        }
        return handle;
    }

    @Override
    public void close() {
        if (!handle.isNull()) {
            inputs.forEach(Tensor::close);
            targets.forEach(Tensor::close);
            handle.close();
        }
    }
}
