package dev.psg4j.bench;

import dev.psg4j.check.Batch;
import dev.psg4j.check.Loss;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Reduction;
import dev.psg4j.model.Model;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.List;
import java.util.function.Function;

/**
 * What one benchmark runs on: a model, its batch of B samples, the loss and the model's plain
 * batched forward (for the {@code backward} method). A suite model (l1 against zeros) or the
 * user's TorchScript model on the first B samples of its input file ({@link UserModel}).
 */
final class Workload implements AutoCloseable {
    private final String name;
    private final Model model;
    private final List<Tensor> inputs;
    private final List<Tensor> targets;
    private final Loss loss;
    private final int batchDim;
    private final Function<List<Tensor>, Tensor> forward;
    private final AutoCloseable owner;
    private final Batch batch;

    Workload(String name, Model model, List<Tensor> inputs, List<Tensor> targets, Loss loss, int batchDim,
             Function<List<Tensor>, Tensor> forward, AutoCloseable owner) {
        this.name = name;
        this.model = model;
        this.inputs = List.copyOf(inputs);
        this.targets = List.copyOf(targets);
        this.loss = loss;
        this.batchDim = batchDim;
        this.forward = forward;
        this.owner = owner;
        this.batch = new Batch(this.inputs, this.targets, batchDim, batchDim);
    }

    /** The suite model {@code name} at B = {@code batch}: built in Java, or with the weights in {@code models} (null: built). */
    static Workload suite(String name, java.nio.file.Path models, long batch, String device) {
        Suite suite = models == null ? Suite.build(name, batch, device) : Suite.load(name, models, batch, device);
        return new Workload(name, suite.model(), List.of(suite.input()), List.of(), Loss.L1, 0,
                in -> suite.forward(in.get(0)), suite);
    }

    /** The name rows are reported under: the suite model's, or the user's model file name. */
    String name() {
        return name;
    }

    Model model() {
        return model;
    }

    /** The batch every method runs on (owned here). */
    Batch batch() {
        return batch;
    }

    Loss loss() {
        return loss;
    }

    long batchSize() {
        return batch.size();
    }

    /** The bytes of the batch: every input and target tensor's elements × element size. */
    long batchBytes() {
        return java.util.stream.Stream.concat(inputs.stream(), targets.stream())
                .mapToLong(t -> t.numel() * t.element_size()).sum();
    }

    /** The bytes of the trainable parameters (|θ| × element size): one sample's per-sample gradients. */
    long parameterBytes() {
        return model.trainableParameters().values().stream().mapToLong(t -> t.numel() * t.element_size()).sum();
    }

    /** A check of this model, batch and loss (on their device); the caller adds the mode, reductions and threads. */
    PerSampleCheck.Builder check() {
        return PerSampleCheck.builder().model(model).inputs(inputs).targets(targets).loss(loss).batchDim(batchDim)
                .targetBatchDim(batchDim).device(batch.device());
    }

    /** One plain batched backward (reduction sum): forward the whole batch, the loss, the gradients of {@code parameters}. */
    long backward(Tensor[] parameters) {
        Tensor output = forward.apply(inputs);
        Tensor value = loss.apply(output, targets, Reduction.SUM, batchSize());
        return torch.grad(new TensorVector(value), new TensorVector(parameters)).size();
    }

    @Override
    public void close() {
        batch.close();
        try {
            owner.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing the benchmark's model failed", e);
        }
    }
}
