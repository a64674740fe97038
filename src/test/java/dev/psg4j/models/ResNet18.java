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
 * torchvision's ResNet-18 with GroupNorm (32 groups) for BatchNorm, as Opacus's
 * ModuleValidator.fix makes it, built in Java as a function model: 62 parameters, 11.2 M weights
 * for 10 classes, named as torchvision names them. Weights drawn as torchvision draws them
 * (Kaiming normal, fan-out, for the convolutions), under a fixed seed; input [B, 3, H, W].
 */
public final class ResNet18 {
    public static final long CLASSES = 10, GROUPS = 32;
    private static final long[] WIDTHS = {64, 128, 256, 512};

    private ResNet18() {
    }

    public static Map<String, Tensor> parameters(long seed) {
        torch.manual_seed(seed);
        Map<String, Tensor> p = new LinkedHashMap<>();
        p.put("conv1.weight", conv(64, 3, 7));
        norm(p, "bn1", 64);
        long in = 64;
        for (int layer = 0; layer < 4; layer++) {
            long out = WIDTHS[layer];
            for (int block = 0; block < 2; block++) {
                String n = "layer" + (layer + 1) + "." + block + ".";
                long from = block == 0 ? in : out;
                p.put(n + "conv1.weight", conv(out, from, 3));
                norm(p, n + "bn1", out);
                p.put(n + "conv2.weight", conv(out, out, 3));
                norm(p, n + "bn2", out);
                if (block == 0 && layer > 0) {
                    p.put(n + "downsample.0.weight", conv(out, from, 1));
                    norm(p, n + "downsample.1", out);
                }
            }
            in = out;
        }
        double bound = 1 / Math.sqrt(512);
        p.put("fc.weight", torch.rand(CLASSES, 512).mul(new Scalar(2 * bound)).sub(new Scalar(bound)));
        p.put("fc.bias", torch.rand(CLASSES).mul(new Scalar(2 * bound)).sub(new Scalar(bound)));
        p.values().forEach(t -> t.requires_grad_(true));
        return p;
    }

    public static Model model(Map<String, Tensor> parameters) {
        return Models.function("ResNet-18 (GroupNorm)", parameters, (inputs, p) -> forward(inputs.get(0), p));
    }

    /** Images [batch, 3, size, size] drawn under {@code seed}. */
    public static Tensor images(long batch, long size, long seed) {
        torch.manual_seed(seed);
        return torch.randn(batch, 3, size, size);
    }

    private static Tensor forward(Tensor x, Map<String, Tensor> p) {
        Tensor h = torch.conv2d(x, p.get("conv1.weight"), new TensorOptional(), new long[] {2, 2}, new long[] {3, 3},
                new long[] {1, 1}, 1);
        h = groupNorm(h, p, "bn1").relu();
        h = torch.max_pool2d(h, new long[] {3, 3}, new long[] {2, 2}, new long[] {1, 1}, new long[] {1, 1}, false);
        for (int layer = 0; layer < 4; layer++) {
            for (int block = 0; block < 2; block++) {
                String n = "layer" + (layer + 1) + "." + block + ".";
                long stride = block == 0 && layer > 0 ? 2 : 1;
                Tensor out = groupNorm(conv(h, p.get(n + "conv1.weight"), stride, 1), p, n + "bn1").relu();
                out = groupNorm(conv(out, p.get(n + "conv2.weight"), 1, 1), p, n + "bn2");
                Tensor shortcut = p.containsKey(n + "downsample.0.weight")
                        ? groupNorm(conv(h, p.get(n + "downsample.0.weight"), stride, 0), p, n + "downsample.1")
                        : h;
                h = out.add(shortcut).relu();
            }
        }
        h = torch.adaptive_avg_pool2d(h, 1, 1).flatten(1, -1);
        return torch.linear(h, p.get("fc.weight"), new TensorOptional(p.get("fc.bias")));
    }

    private static Tensor conv(Tensor x, Tensor w, long stride, long padding) {
        return torch.conv2d(x, w, new TensorOptional(), new long[] {stride, stride}, new long[] {padding, padding},
                new long[] {1, 1}, 1);
    }

    private static Tensor groupNorm(Tensor x, Map<String, Tensor> p, String n) {
        return torch.group_norm(x, GROUPS, new TensorOptional(p.get(n + ".weight")), new TensorOptional(p.get(n + ".bias")),
                1e-5, false);
    }

    private static Tensor conv(long out, long in, long k) {
        return torch.randn(out, in, k, k).mul(new Scalar(Math.sqrt(2.0 / (out * k * k))));
    }

    private static void norm(Map<String, Tensor> p, String n, long channels) {
        p.put(n + ".weight", torch.ones(channels));
        p.put(n + ".bias", torch.zeros(channels));
    }
}
