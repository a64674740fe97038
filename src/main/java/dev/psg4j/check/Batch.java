package dev.psg4j.check;

import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.NativeCore.NativeBatch;
import dev.psg4j.bridge.Natives;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.List;

/**
 * The samples of a check: the model's inputs (several for multi-input models), the loss targets
 * (possibly none) and the batch dimension of each. Validated on creation: an empty batch, a batch
 * dimension out of range or inputs whose batch sizes differ are a BadInputException. The native
 * batch holds its own references to the tensors, which stay the caller's to close (at any time);
 * {@link #close} frees the batch's.
 */
public final class Batch implements AutoCloseable {
    private final List<Tensor> inputs;
    private final List<Tensor> targets;
    private final int batchDim;
    private final int targetBatchDim;
    private final NativeBatch handle;
    private final long size;
    private final String device;

    public Batch(List<Tensor> inputs, List<Tensor> targets, int batchDim, int targetBatchDim) {
        this.inputs = List.copyOf(inputs);
        this.targets = List.copyOf(targets);
        this.batchDim = batchDim;
        this.targetBatchDim = targetBatchDim;
        try (TensorVector in = Natives.vector(this.inputs, "input");
             TensorVector tg = Natives.vector(this.targets, "target")) {
            this.handle = Natives.call(() -> NativeCore.make_batch(in, tg, batchDim, targetBatchDim));
        }
        this.size = handle.size();
        this.device = deviceOf(this.inputs.get(0));
    }

    private static String deviceOf(Tensor tensor) {
        try (Device device = tensor.device(); BytePointer name = device.str()) {
            return name.getString();
        }
    }

    public static Batch of(Tensor... inputs) {
        return new Batch(List.of(inputs), List.of(), 0, 0);
    }

    public List<Tensor> inputs() {
        return inputs;
    }

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

    public NativeBatch handle() {
        return handle;
    }

    @Override
    public void close() {
        handle.close();
    }
}
