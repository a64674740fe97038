package dev.psg4j.model;

import org.bytedeco.pytorch.Tensor;

import java.util.List;

/**
 * The forward of a model written in Java. It must use the parameter tensors given to
 * {@link Models#function} (the reference differentiates with respect to exactly those), treat
 * the batch dimension as the check says, and may be called from several threads at once.
 */
@FunctionalInterface
public interface ForwardFunction {
    Tensor forward(List<Tensor> inputs);
}
