package dev.psg4j.models;

import dev.psg4j.model.Model;
import dev.psg4j.model.Models;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A GPT-style decoder built in Java as a function model: token embedding tied to the LM head,
 * learned positions, pre-LN blocks of causal multi-head attention and a GELU MLP, a final
 * LayerNorm. At the default size (V = 2,000, T = 32, D = 128, 4 heads, 2 blocks) it has 28
 * parameters and 656,896 weights, and its output is the logits [B, V, T] (classes in dimension 1,
 * as cross_entropy takes them). Weights are drawn as GPT-2 draws them (N(0, 0.02), the residual
 * projections scaled by 1/sqrt(2·blocks)), under a fixed seed.
 */
public final class TinyGpt {
    public static final long VOCAB = 2000, CONTEXT = 32, WIDTH = 128, HEADS = 4, BLOCKS = 2;

    private TinyGpt() {
    }

    /** The parameters, float32, requires_grad, drawn under {@code seed}. */
    public static Map<String, Tensor> parameters(long seed) {
        torch.manual_seed(seed);
        Map<String, Tensor> p = new LinkedHashMap<>();
        p.put("wte.weight", normal(0.02, VOCAB, WIDTH));
        p.put("wpe.weight", normal(0.01, CONTEXT, WIDTH));
        double residual = 0.02 / Math.sqrt(2.0 * BLOCKS);
        for (int b = 0; b < BLOCKS; b++) {
            String h = "h." + b + ".";
            p.put(h + "ln_1.weight", torch.ones(WIDTH));
            p.put(h + "ln_1.bias", torch.zeros(WIDTH));
            p.put(h + "attn.c_attn.weight", normal(0.02, 3 * WIDTH, WIDTH));
            p.put(h + "attn.c_attn.bias", torch.zeros(3 * WIDTH));
            p.put(h + "attn.c_proj.weight", normal(residual, WIDTH, WIDTH));
            p.put(h + "attn.c_proj.bias", torch.zeros(WIDTH));
            p.put(h + "ln_2.weight", torch.ones(WIDTH));
            p.put(h + "ln_2.bias", torch.zeros(WIDTH));
            p.put(h + "mlp.c_fc.weight", normal(0.02, 4 * WIDTH, WIDTH));
            p.put(h + "mlp.c_fc.bias", torch.zeros(4 * WIDTH));
            p.put(h + "mlp.c_proj.weight", normal(residual, WIDTH, 4 * WIDTH));
            p.put(h + "mlp.c_proj.bias", torch.zeros(WIDTH));
        }
        p.put("ln_f.weight", torch.ones(WIDTH));
        p.put("ln_f.bias", torch.zeros(WIDTH));
        p.values().forEach(t -> t.requires_grad_(true));
        return p;
    }

    /** The model over {@code parameters} (any floating dtype: the forward makes no tensor of its own but a bool mask). */
    public static Model model(Map<String, Tensor> parameters) {
        return Models.function("tiny GPT", parameters, (inputs, p) -> forward(inputs.get(0), p));
    }

    /** Token ids [batch, CONTEXT] in [0, VOCAB), drawn under {@code seed}. */
    public static Tensor tokens(long batch, long seed) {
        torch.manual_seed(seed);
        return torch.randint(VOCAB, new long[] {batch, CONTEXT});
    }

    /** The logits [B, V, T] of {@code tokens} [B, T] under the parameters {@code p} (the names of {@link #parameters}). */
    public static Tensor forward(Tensor tokens, Map<String, Tensor> p) {
        long t = tokens.size(1);
        Tensor causal = torch.ones(t, t).tril().to(torch.ScalarType.Bool).logical_not();
        Tensor h = torch.embedding(p.get("wte.weight"), tokens).add(p.get("wpe.weight").narrow(0, 0, t));
        for (int b = 0; b < BLOCKS; b++) {
            String n = "h." + b + ".";
            Tensor a = layerNorm(h, p, n + "ln_1");
            h = h.add(attention(a, p, n + "attn.", causal));
            Tensor m = layerNorm(h, p, n + "ln_2");
            Tensor fc = torch.gelu(linear(m, p, n + "mlp.c_fc"));
            h = h.add(linear(fc, p, n + "mlp.c_proj"));
        }
        h = layerNorm(h, p, "ln_f");
        return torch.linear(h, p.get("wte.weight")).transpose(1, 2);  // [B, V, T]
    }

    private static Tensor attention(Tensor x, Map<String, Tensor> p, String n, Tensor masked) {
        long batch = x.size(0), t = x.size(1), head = WIDTH / HEADS;
        var qkv = linear(x, p, n + "c_attn").split(WIDTH, 2);
        Tensor q = qkv.get(0).reshape(batch, t, HEADS, head).transpose(1, 2);
        Tensor k = qkv.get(1).reshape(batch, t, HEADS, head).transpose(1, 2);
        Tensor v = qkv.get(2).reshape(batch, t, HEADS, head).transpose(1, 2);
        Tensor scores = q.matmul(k.transpose(2, 3)).mul(new Scalar(1.0 / Math.sqrt(head)))
                .masked_fill(masked, new Scalar(Double.NEGATIVE_INFINITY));
        Tensor y = scores.softmax(-1).matmul(v).transpose(1, 2).reshape(batch, t, WIDTH);
        return linear(y, p, n + "c_proj");
    }

    private static Tensor linear(Tensor x, Map<String, Tensor> p, String n) {
        return torch.linear(x, p.get(n + ".weight"), new TensorOptional(p.get(n + ".bias")));
    }

    private static Tensor layerNorm(Tensor x, Map<String, Tensor> p, String n) {
        return torch.layer_norm(x, new long[] {WIDTH}, new TensorOptional(p.get(n + ".weight")),
                new TensorOptional(p.get(n + ".bias")), 1e-5, false);
    }

    private static Tensor normal(double std, long... shape) {
        return torch.randn(shape).mul(new Scalar(std));
    }
}
