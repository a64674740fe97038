package dev.psg4j.check;

import org.bytedeco.pytorch.Tensor;

import java.util.List;

/**
 * A loss written in Java: the scalar loss of a batch whose outputs are {@code output}, reduced with
 * {@code reduction} over that batch. The reference calls it on one-sample batches, possibly from
 * several threads at once.
 */
@FunctionalInterface
public interface LossFunction {
    Tensor apply(Tensor output, List<Tensor> targets, Reduction reduction);
}
