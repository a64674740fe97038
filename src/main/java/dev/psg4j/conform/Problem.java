package dev.psg4j.conform;

import dev.psg4j.check.Loss;

import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.List;
import java.util.function.UnaryOperator;

/**
 * One check of the layer matrix: a C++-frontend module, its batch (inputs with the batch at
 * {@code batchDim}, targets batch-first) and its loss. With {@link Loss#MSE} the targets are drawn
 * with the shape of the module's output.
 *
 * <p>Ownership: the module and tensors are plain bytedeco objects, freed by the
 * {@link org.bytedeco.javacpp.PointerScope} they were made in (as {@link Conformance} does per row)
 * or by the garbage collector.
 */
public record Problem(Module module, List<Tensor> inputs, int batchDim, Loss loss, List<Tensor> targets) {
    public Problem {
        inputs = List.copyOf(inputs);
        targets = List.copyOf(targets);
    }

    /** MSE against random targets shaped like {@code forward(x)} (run here, without gradients). */
    public static Problem mse(Module module, UnaryOperator<Tensor> forward, Tensor x, int batchDim) {
        Tensor out;
        try (NoGradGuard noGrad = new NoGradGuard()) {
            out = forward.apply(x);
        }
        return new Problem(module, List.of(x), batchDim, Loss.MSE, List.of(torch.randn_like(out)));
    }

    /** {@link #mse(Module, UnaryOperator, Tensor, int)} on batch-first data. */
    public static Problem mse(Module module, UnaryOperator<Tensor> forward, Tensor x) {
        return mse(module, forward, x, 0);
    }

    /** Cross-entropy on batch-first data: the module's output is [B, classes]; the targets random class indices. */
    public static Problem crossEntropy(Module module, Tensor x, long classes) {
        return new Problem(module, List.of(x), 0, Loss.CROSS_ENTROPY,
                List.of(torch.randint(classes, new long[] {x.size(0)})));
    }

    /** The batch size: the inputs' extent at {@link #batchDim}. */
    public long batchSize() {
        return inputs.get(0).size(batchDim);
    }

    /** The same module and inputs under {@code other}: l1 and sum against zeros (no targets), mse as is. */
    public Problem withLoss(Loss other) {
        if (other == loss) {
            return this;
        }
        if (other != Loss.L1 && other != Loss.SUM) {
            throw new IllegalArgumentException("only l1 and sum need no targets: " + other);
        }
        return new Problem(module, inputs, batchDim, other, List.of());
    }

    /** Runs {@code forward} a few times in train mode (no grad), so eval-mode running stats are not the defaults. */
    public static void warmRunningStats(Module module, UnaryOperator<Tensor> forward, Tensor sample) {
        module.train(true);
        try (NoGradGuard noGrad = new NoGradGuard()) {
            for (int k = 0; k < 3; k++) {
                forward.apply(torch.randn_like(sample).mul(new Scalar(2.0)).add(new Scalar(0.5)));
            }
        }
        module.eval();
    }
}
