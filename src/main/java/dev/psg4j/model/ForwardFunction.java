package dev.psg4j.model;

import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;

/**
 * The forward of a model written in Java, in functional form (like {@code torch.func.functional_call}):
 * it computes the output from {@code inputs} using the tensors in {@code parameters} (name → tensor,
 * every parameter given to {@link Models#function}, in that order), never its own copies. The
 * reference passes the model's own parameters; the vmap engine passes wrapped ones. It must treat
 * the batch dimension as the check says, and may be called from several threads at once.
 */
@FunctionalInterface
public interface ForwardFunction {
    Tensor forward(List<Tensor> inputs, Map<String, Tensor> parameters);
}
