package dev.psg4j.models;

import dev.psg4j.model.FrontendLayers;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A LoRA-style layer: a frozen Linear (weight and bias without requires_grad) plus two trainable
 * low-rank adapters, y = x·Wᵀ + b + (x·Aᵀ)·Bᵀ·(alpha / rank), in float, under a fixed seed; as a
 * function model and as a C++-frontend layer of a registered type inside a Sequential.
 */
public final class LoRA {
    public static final long IN = 32, OUT = 16, RANK = 4;
    private static final double SCALE = 2.0;
    public static final String LAYER_TYPE = "test.LoRALinear";

    private LoRA() {
    }

    /** weight and bias frozen, lora_a and lora_b trainable (lora_b nonzero, so every gradient is). */
    public static Map<String, Tensor> parameters(long seed) {
        torch.manual_seed(seed);
        Map<String, Tensor> p = new LinkedHashMap<>();
        p.put("weight", torch.randn(OUT, IN).mul(new Scalar(1 / Math.sqrt(IN))));
        p.put("bias", torch.randn(OUT).mul(new Scalar(0.1)));
        p.put("lora_a", torch.randn(RANK, IN).mul(new Scalar(0.1)).requires_grad_(true));
        p.put("lora_b", torch.randn(OUT, RANK).mul(new Scalar(0.1)).requires_grad_(true));
        return p;
    }

    public static Tensor forward(Tensor x, Map<String, Tensor> p) {
        Tensor frozen = torch.linear(x, p.get("weight"), new TensorOptional(p.get("bias")));
        return frozen.add(torch.linear(torch.linear(x, p.get("lora_a")), p.get("lora_b")).mul(new Scalar(SCALE)));
    }

    public static Model functionModel(Map<String, Tensor> parameters) {
        return Models.function("LoRA linear", parameters, (inputs, p) -> forward(inputs.get(0), p));
    }

    /** A Sequential holding one layer of the registered LoRA type (registered on first use). */
    public static SequentialImpl sequential(Map<String, Tensor> parameters) {
        registerOnce();
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("lora", FrontendLayers.layer(LAYER_TYPE, parameters));
        return seq;
    }

    private static synchronized void registerOnce() {
        if (!FrontendLayers.registered().contains(LAYER_TYPE)) {
            FrontendLayers.register(LAYER_TYPE, List.of("weight", "bias", "lora_a", "lora_b"), LoRA::forward);
        }
    }

    public static Tensor inputs(long batch, long seed) {
        torch.manual_seed(seed);
        return torch.randn(batch, IN);
    }
}
