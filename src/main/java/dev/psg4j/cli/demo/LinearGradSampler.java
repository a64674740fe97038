package dev.psg4j.cli.demo;

import dev.psg4j.BadInputException;
import dev.psg4j.check.Batch;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.check.Reduction;
import dev.psg4j.model.Model;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;
import java.util.function.UnaryOperator;

/**
 * A hand-written per-sample grad sampler for a model built around one Linear layer, the way
 * Opacus's {@code grad_sample/linear.py} does it: from the layer's activations {@code A [n, ..., in]}
 * and the backprops {@code G = dLoss/dOutput [n, ..., out]} of the batch loss,
 * <pre>
 *   grad_W[n] = sum over the middle dims of G[n]^T A[n]        grad_b[n] = sum over the middle dims of G[n]
 * </pre>
 * multiplied by B for reduction mean (the batch-mean loss has a 1/B the one-sample loss lacks).
 *
 * <p>Like Opacus's hooks it assumes the activations are <b>batch-first</b>: {@code n} is dimension 0
 * of {@code A}. A model that feeds its Linear a time-first tensor (see {@link #around}) breaks that
 * assumption; when the sizes happen to agree the result is silently wrong, which is what the
 * check is for.
 *
 * <p>The model's forward must be {@code after(linear(before(inputs), weight, bias))}: by default
 * {@code before} takes the first input and {@code after} is the identity. The weight and bias are
 * read from {@link Model#trainableParameters()} by name; G comes from LibTorch's autograd.
 */
public final class LinearGradSampler implements GradSampler {
    private final String name;
    private final String weight;
    private final String bias;
    private final Function<List<Tensor>, Tensor> before;
    private final UnaryOperator<Tensor> after;

    private LinearGradSampler(String name, String weight, String bias, Function<List<Tensor>, Tensor> before,
                              UnaryOperator<Tensor> after) {
        this.name = name;
        this.weight = Objects.requireNonNull(weight, "weight");
        this.bias = bias;
        this.before = before;
        this.after = after;
    }

    /** The sampler of a model that is one Linear layer with these parameter names ({@code bias} may be null). */
    public static LinearGradSampler of(String weight, String bias) {
        return new LinearGradSampler("linear", weight, bias, inputs -> inputs.get(0), UnaryOperator.identity());
    }

    /**
     * The same sampler for a model whose forward is {@code after(linear(before(inputs)))}: {@code before}
     * gives the layer's activation (what a forward hook sees), {@code after} maps the layer's output to
     * the model's output.
     */
    public LinearGradSampler around(Function<List<Tensor>, Tensor> before, UnaryOperator<Tensor> after) {
        return new LinearGradSampler(name, weight, bias, Objects.requireNonNull(before, "before"),
                Objects.requireNonNull(after, "after"));
    }

    /** The same sampler reported under another name. */
    public LinearGradSampler named(String name) {
        return new LinearGradSampler(Objects.requireNonNull(name, "name"), weight, bias, before, after);
    }

    public String weightName() {
        return weight;
    }

    public String biasName() {
        return bias;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
        // Every temporary is freed with the scope; the gradients returned keep a reference of
        // their own and pass to the caller, who closes them (GradSampler's contract).
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> out = gradients(model, batch, loss, reduction);
            out.values().forEach(Tensor::retainReference);
            return out;
        }
    }

    private Map<String, Tensor> gradients(Model model, Batch batch, Loss loss, Reduction reduction) {
        Map<String, Tensor> params = model.trainableParameters();
        Tensor w = parameter(params, weight).detach();
        Tensor b = bias == null ? null : parameter(params, bias).detach();

        Tensor activations = before.apply(batch.inputs()).detach();
        Tensor layerOutput = b == null ? torch.linear(activations, w) : torch.linear(activations, w, new TensorOptional(b));
        layerOutput = layerOutput.detach();
        layerOutput.set_requires_grad(true);
        Tensor batchLoss = loss.apply(after.apply(layerOutput), batch.targets(), reduction, batch.size());
        Tensor backprops = torch.grad(new TensorVector(batchLoss), new TensorVector(layerOutput)).get(0);

        // Batch-first, as Opacus's hooks assume: n is dimension 0 of the activations.
        long n = activations.size(0);
        Tensor a = activations.reshape(n, -1, activations.size(-1));
        Tensor g = backprops.reshape(n, -1, backprops.size(-1));
        double scale = reduction == Reduction.MEAN ? batch.size() : 1.0;

        Map<String, Tensor> out = new LinkedHashMap<>();
        out.put(weight, g.transpose(1, 2).bmm(a).mul(new Scalar(scale)));
        if (bias != null) {
            out.put(bias, g.sum(1).mul(new Scalar(scale)));
        }
        return out;
    }

    private Tensor parameter(Map<String, Tensor> params, String param) {
        Tensor t = params.get(param);
        if (t == null) {
            throw new BadInputException("grad sampler '" + name + "': the model has no trainable parameter '" + param
                    + "' (it has " + params.keySet() + "): give the Linear layer's parameter names");
        }
        return t;
    }
}
