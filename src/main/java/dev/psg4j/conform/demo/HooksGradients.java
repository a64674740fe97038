package dev.psg4j.conform.demo;

import dev.psg4j.UnsupportedModelException;
import dev.psg4j.engine.CapturedLayer;

import org.bytedeco.javacpp.BoolPointer;
import org.bytedeco.pytorch.LongArrayRefOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Hooks-style per-sample gradients of Linear and Conv layers (Opacus's grad_sample/linear.py and
 * conv.py), written on psg4j's {@link dev.psg4j.engine.LayerCapture}, in correct and in
 * deliberately broken variants for the demo.
 */
public final class HooksGradients {
    private HooksGradients() {
    }

    /**
     * Linear: grad_W[n] = Σ_t G[n, t]ᵀ A[n, t] and grad_b[n] = Σ_t G[n, t] over the middle dimensions.
     * With {@code batchFirstOnly} the batch is taken to be dimension 0 whatever the data's layout:
     * time-first input ([T, B, features]) then gives [T, ...] gradients, wrong.
     */
    public static LayerGradient linear(boolean batchFirstOnly) {
        return (layer, batchDim, parameters) -> {
            int dim = batchFirstOnly ? 0 : batchDim;
            Tensor a = layer.activations().movedim(dim, 0);
            Tensor g = layer.backprops().movedim(dim, 0);
            long n = a.size(0);
            Tensor a3 = a.reshape(n, -1, a.size(-1));
            Tensor g3 = g.reshape(n, -1, g.size(-1));
            Map<String, Tensor> out = new LinkedHashMap<>();
            out.put("weight", g3.transpose(1, 2).bmm(a3));
            out.put("bias", g3.sum(1));
            return out;
        };
    }

    /**
     * Conv1d/2d/3d: the per-sample weight gradient as one convolution backward with the batch
     * folded into the groups (input [1, B·C, ...], weight [B·O, C/groups, ...], groups B·groups), so
     * stride, padding, dilation and groups are LibTorch's own; 'same' padding (asymmetric for an
     * even kernel) is applied to the activations first. With {@code ignoreGroups} the layer's
     * groups are left out (every filter sees all C input channels) and the first C/groups channels
     * kept so the shape fits: right for groups = 1, wrong for grouped and depthwise convolutions.
     */
    public static LayerGradient conv(boolean ignoreGroups) {
        return (layer, batchDim, parameters) -> {
            CapturedLayer.LayerOptions o = layer.options();
            Tensor weight = parameters.get(layer.parameterName("weight"));
            int dims = (int) weight.dim() - 2;
            Tensor a = layer.activations();
            Tensor g = layer.backprops();
            long[] kernel = new long[dims];
            for (int d = 0; d < dims; d++) {
                kernel[d] = weight.size(2 + d);
            }
            long[] padding = longs(o.padding());
            if (!o.exactPadding()) {
                a = padSame(a, kernel, longs(o.dilation()), layer);
                padding = new long[dims];
            }
            long n = a.size(0);
            long channels = a.size(1);
            long filters = g.size(1);
            long groups = ignoreGroups ? 1 : o.groups();
            long[] weightShape = new long[2 + dims];
            weightShape[0] = n * filters;
            weightShape[1] = channels / groups;
            System.arraycopy(kernel, 0, weightShape, 2, dims);
            Tensor folded = torch.convolution_backward(g.reshape(concat(1, n * filters, g, 2)),
                    a.reshape(concat(1, n * channels, a, 2)), torch.zeros(weightShape), new LongArrayRefOptional(),
                    longs(o.stride()), padding, longs(o.dilation()), false, new long[dims], n * groups, mask()).get1();
            long[] perSample = new long[3 + dims];
            perSample[0] = n;
            perSample[1] = filters;
            perSample[2] = channels / groups;
            System.arraycopy(kernel, 0, perSample, 3, dims);
            Tensor grad = folded.reshape(perSample).narrow(2, 0, weight.size(1));
            Map<String, Tensor> out = new LinkedHashMap<>();
            out.put("weight", grad.contiguous());
            long[] spatial = new long[dims];
            for (int d = 0; d < dims; d++) {
                spatial[d] = 2 + d;
            }
            out.put("bias", g.sum(spatial));
            return out;
        };
    }

    /** PyTorch's 'same': total padding dilation·(kernel − 1) per dimension, the odd one extra on the right. */
    private static Tensor padSame(Tensor a, long[] kernel, long[] dilation, CapturedLayer layer) {
        if (layer.options().padding().stream().anyMatch(p -> p != 0)) {
            throw new UnsupportedModelException("layer " + layer.name() + " pads with a mode other than zeros, "
                    + "which this sampler does not implement", null);
        }
        int dims = kernel.length;
        long[] pad = new long[2 * dims];
        for (int d = 0; d < dims; d++) {
            long total = dilation[d] * (kernel[d] - 1);
            int slot = 2 * (dims - 1 - d);  // constant_pad_nd lists the last dimension first
            pad[slot] = total / 2;
            pad[slot + 1] = total - total / 2;
        }
        return torch.constant_pad_nd(a, pad);
    }

    /** {@code {first, second, t.size(from), t.size(from + 1), ...}}. */
    private static long[] concat(long first, long second, Tensor t, int from) {
        long[] out = new long[2 + (int) t.dim() - from];
        out[0] = first;
        out[1] = second;
        for (int d = from; d < t.dim(); d++) {
            out[2 + d - from] = t.size(d);
        }
        return out;
    }

    private static BoolPointer mask() {
        BoolPointer mask = new BoolPointer(3);
        mask.put(0, false);
        mask.put(1, true);
        mask.put(2, false);
        return mask;
    }

    private static long[] longs(List<Long> values) {
        return values.stream().mapToLong(Long::longValue).toArray();
    }
}
