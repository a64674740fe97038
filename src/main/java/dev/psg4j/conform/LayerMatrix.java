package dev.psg4j.conform;

import dev.psg4j.check.Loss;
import dev.psg4j.model.Models;

import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.AvgPool2dImpl;
import org.bytedeco.pytorch.BatchNorm1dImpl;
import org.bytedeco.pytorch.BatchNorm2dImpl;
import org.bytedeco.pytorch.BatchNorm3dImpl;
import org.bytedeco.pytorch.BatchNormOptions;
import org.bytedeco.pytorch.BilinearImpl;
import org.bytedeco.pytorch.BilinearOptions;
import org.bytedeco.pytorch.Conv1dImpl;
import org.bytedeco.pytorch.Conv2dImpl;
import org.bytedeco.pytorch.EmbeddingBagImpl;
import org.bytedeco.pytorch.EmbeddingBagOptions;
import org.bytedeco.pytorch.EmbeddingImpl;
import org.bytedeco.pytorch.FlattenImpl;
import org.bytedeco.pytorch.GroupNormImpl;
import org.bytedeco.pytorch.GroupNormOptions;
import org.bytedeco.pytorch.InstanceNorm1dImpl;
import org.bytedeco.pytorch.InstanceNorm2dImpl;
import org.bytedeco.pytorch.InstanceNorm3dImpl;
import org.bytedeco.pytorch.InstanceNormOptions;
import org.bytedeco.pytorch.LSTMImpl;
import org.bytedeco.pytorch.LSTMOptions;
import org.bytedeco.pytorch.LayerNormImpl;
import org.bytedeco.pytorch.LayerNormOptions;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.LinearOptions;
import org.bytedeco.pytorch.LongVector;
import org.bytedeco.pytorch.MaxPool2dImpl;
import org.bytedeco.pytorch.MultiheadAttentionImpl;
import org.bytedeco.pytorch.MultiheadAttentionOptions;
import org.bytedeco.pytorch.ReLUImpl;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.TanhImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.kMean;
import org.bytedeco.pytorch.kSum;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.LongFunction;

/**
 * psg4j's layer matrix: C++-frontend configurations built in Java, layer by layer, after Opacus's
 * grad-sample tests ({@code opacus/tests/grad_samples}). Linear on 2-, 3- and 4-D and time-first
 * input; Conv1d/2d/3d over stride, padding (numbers, 'same', 'valid', an even kernel's asymmetric
 * 'same'), dilation and groups (depthwise too); ConvTranspose1d/2d/3d; Embedding and EmbeddingBag;
 * LayerNorm, GroupNorm, InstanceNorm, BatchNorm in eval mode; RNN, GRU, LSTM (layers, directions,
 * batch-first or not); MultiheadAttention; Bilinear on two inputs; cross-entropy; Sequentials; a
 * module used twice; batch of 1. The vmap engine passes every configuration (its tests run this
 * matrix), and {@code psg4j conform} runs a grad sampler over it.
 *
 * <p>Naming: a time-first configuration's name says {@value #TIME_FIRST}; one with a layer used
 * twice ends in {@value #USED_TWICE}; a grouped convolution's says "groups="; the batch-of-1 ones
 * say {@value #BATCH_OF_ONE} and run at B = 1 whatever batch sizes are asked.
 */
public final class LayerMatrix {
    public static final String TIME_FIRST = "time-first";
    public static final String USED_TWICE = "(module used twice)";
    public static final String BATCH_OF_ONE = "(batch of 1)";

    private LayerMatrix() {
    }

    /** Every configuration, in a fixed order (convolutions, linears, embeddings, norms, recurrent, attention, Sequentials). */
    public static List<Configuration> configurations() {
        List<Configuration> out = new ArrayList<>();
        convolutions(out);
        linears(out);
        embeddings(out);
        norms(out);
        recurrent(out);
        attention(out);
        sequentials(out);
        Set<String> names = new HashSet<>();
        for (Configuration c : out) {
            if (!names.add(c.name())) {
                throw new IllegalStateException("two layer-matrix configurations are named " + c.name());
            }
        }
        return List.copyOf(out);
    }

    private static void add(List<Configuration> out, String name, LongFunction<Problem> problem) {
        out.add(Configuration.frontend(name, problem));
    }

    private static void addBatchOfOne(List<Configuration> out, String name, LongFunction<Problem> problem) {
        out.add(Configuration.frontend(name + " " + BATCH_OF_ONE, 1, problem));
    }

    private static void conv(List<Configuration> out, ConvSpec spec, long... size) {
        add(out, spec + " on " + spatial(size, spec.dims()), b -> spec.problem(b, size));
    }

    private static String spatial(long[] size, int dims) {
        StringBuilder s = new StringBuilder();
        for (int d = 0; d < dims; d++) {
            s.append(d == 0 ? "" : "x").append(size[Math.min(d, size.length - 1)]);
        }
        return s.toString();
    }

    private static void convolutions(List<Configuration> out) {
        for (int dims = 1; dims <= 3; dims++) {
            long size = dims == 3 ? 5 : 7;
            ConvSpec base = ConvSpec.conv(dims, 2, 4, 3);
            conv(out, base, size);
            conv(out, base.stride(2), size);
            conv(out, base.padding(1), size);
            conv(out, base.padding(2).stride(2), size);
            conv(out, base.padding("same"), size);
            conv(out, base.padding("valid"), size);
            conv(out, base.dilation(2), size);
            conv(out, base.padding("same").dilation(2), size);
            conv(out, base.groups(2), size);
            conv(out, ConvSpec.conv(dims, 3, 3, 3).groups(3), size);          // depthwise
            conv(out, ConvSpec.conv(dims, 2, 4, 3).groups(2).noBias(), size); // depthwise, multiplier 2
            conv(out, base.noBias(), size);
            conv(out, ConvSpec.conv(dims, 2, 4, 2).padding("same"), size);    // even kernel: asymmetric padding
            conv(out, ConvSpec.conv(dims, 1, 2, 1), size);

            ConvSpec t = ConvSpec.transposed(dims, 2, 4, 3);
            long tsize = dims == 3 ? 3 : 4;
            conv(out, t, tsize);
            conv(out, t.stride(2), tsize);
            conv(out, t.stride(2).padding(1).outputPadding(1), tsize);
            conv(out, t.groups(2), tsize);
            conv(out, t.stride(2).groups(2).noBias(), tsize);
            conv(out, t.dilation(2), tsize);
        }
    }

    private static LinearImpl linear(long in, long out, boolean bias) {
        LinearOptions o = new LinearOptions(in, out);
        o.bias().put(bias);
        return new LinearImpl(o);
    }

    /** Linear(5->3) on a batch shaped {@code shape} with the batch (of {@code b}) at {@code batchDim}. */
    private static Problem linear(boolean bias, int batchDim, long... shape) {
        LinearImpl m = linear(5, 3, bias);
        return Problem.mse(m, m::forward, torch.randn(shape), batchDim);
    }

    private static void linears(List<Configuration> out) {
        add(out, "Linear(5->3) on [B, 5]", b -> linear(true, 0, b, 5));
        add(out, "Linear(5->3, bias=false) on [B, 5]", b -> linear(false, 0, b, 5));
        add(out, "Linear(5->3) on [B, 4, 5]", b -> linear(true, 0, b, 4, 5));
        add(out, "Linear(5->3) on [B, 2, 3, 5]", b -> linear(true, 0, b, 2, 3, 5));
        add(out, "Linear(5->3) " + TIME_FIRST + " on [T=4, B, 5], batch dim 1", b -> linear(true, 1, 4, b, 5));
        addBatchOfOne(out, "Linear(5->3) on [B=1, 5]", b -> linear(true, 0, 1, 5));
        add(out, "Linear(5->3) cross-entropy on [B, 5]", b -> Problem.crossEntropy(linear(5, 3, true),
                torch.randn(b, 5), 3));
        add(out, "Bilinear(3, 4 -> 2) on two inputs [B, 3], [B, 4]", b -> bilinear(true, b));
        add(out, "Bilinear(3, 4 -> 2, bias=false) on two inputs [B, 3], [B, 4]", b -> bilinear(false, b));
    }

    private static Problem bilinear(boolean bias, long b) {
        BilinearOptions o = new BilinearOptions(3, 4, 2);
        o.bias().put(bias);
        BilinearImpl m = new BilinearImpl(o);
        return new Problem(m, List.of(torch.randn(b, 3), torch.randn(b, 4)), 0, Loss.MSE, List.of(torch.randn(b, 2)));
    }

    private static void embeddings(List<Configuration> out) {
        add(out, "Embedding(10, 4) on [B, 5]", b -> {
            EmbeddingImpl m = new EmbeddingImpl(10, 4);
            return Problem.mse(m, m::forward, torch.randint(10, new long[] {b, 5}));
        });
        add(out, "Embedding(10, 4) on [B, 2, 3]", b -> {
            EmbeddingImpl m = new EmbeddingImpl(10, 4);
            return Problem.mse(m, m::forward, torch.randint(10, new long[] {b, 2, 3}));
        });
        for (String mode : List.of("sum", "mean")) {
            add(out, "EmbeddingBag(10, 4, mode=" + mode + ") on bags [B, 5]", b -> {
                EmbeddingBagOptions o = new EmbeddingBagOptions(10, 4);
                if (mode.equals("sum")) {
                    o.mode().put(new kSum());
                } else {
                    o.mode().put(new kMean());
                }
                EmbeddingBagImpl m = new EmbeddingBagImpl(o);
                return Problem.mse(m, m::forward, torch.randint(10, new long[] {b, 5}));
            });
        }
    }

    private static LayerNormImpl layerNorm(long... shape) {
        return new LayerNormImpl(new LayerNormOptions(new LongVector(shape)));
    }

    private static void norms(List<Configuration> out) {
        add(out, "LayerNorm([6]) on [B, 6]", b -> {
            LayerNormImpl m = layerNorm(6);
            return Problem.mse(m, m::forward, torch.randn(b, 6));
        });
        add(out, "LayerNorm([6]) on [B, 4, 6]", b -> {
            LayerNormImpl m = layerNorm(6);
            return Problem.mse(m, m::forward, torch.randn(b, 4, 6));
        });
        add(out, "LayerNorm([4, 6]) on [B, 4, 6]", b -> {
            LayerNormImpl m = layerNorm(4, 6);
            return Problem.mse(m, m::forward, torch.randn(b, 4, 6));
        });
        add(out, "GroupNorm(2 groups, 4 channels) on [B, 4, 5]", b -> {
            GroupNormImpl m = new GroupNormImpl(new GroupNormOptions(2, 4));
            return Problem.mse(m, m::forward, torch.randn(b, 4, 5));
        });
        add(out, "GroupNorm(3 groups, 6 channels) on [B, 6, 3, 3]", b -> {
            GroupNormImpl m = new GroupNormImpl(new GroupNormOptions(3, 6));
            return Problem.mse(m, m::forward, torch.randn(b, 6, 3, 3));
        });
        add(out, "GroupNorm(1 group, 4 channels) on [B, 4, 3, 3]", b -> {
            GroupNormImpl m = new GroupNormImpl(new GroupNormOptions(1, 4));
            return Problem.mse(m, m::forward, torch.randn(b, 4, 3, 3));
        });
        add(out, "InstanceNorm1d(3, affine) on [B, 3, 6]", b -> {
            InstanceNorm1dImpl m = new InstanceNorm1dImpl(instanceNorm(3));
            return Problem.mse(m, m::forward, torch.randn(b, 3, 6));
        });
        add(out, "InstanceNorm2d(3, affine) on [B, 3, 4, 4]", b -> {
            InstanceNorm2dImpl m = new InstanceNorm2dImpl(instanceNorm(3));
            return Problem.mse(m, m::forward, torch.randn(b, 3, 4, 4));
        });
        add(out, "InstanceNorm3d(3, affine) on [B, 3, 3, 3, 3]", b -> {
            InstanceNorm3dImpl m = new InstanceNorm3dImpl(instanceNorm(3));
            return Problem.mse(m, m::forward, torch.randn(b, 3, 3, 3, 3));
        });
        add(out, "BatchNorm1d(4) eval on [B, 4]", b -> {
            BatchNorm1dImpl m = new BatchNorm1dImpl(new BatchNormOptions(4));
            Tensor x = torch.randn(b, 4);
            Problem.warmRunningStats(m, m::forward, x);
            return Problem.mse(m, m::forward, x);
        });
        add(out, "BatchNorm1d(4) eval on [B, 4, 5]", b -> {
            BatchNorm1dImpl m = new BatchNorm1dImpl(new BatchNormOptions(4));
            Tensor x = torch.randn(b, 4, 5);
            Problem.warmRunningStats(m, m::forward, x);
            return Problem.mse(m, m::forward, x);
        });
        add(out, "BatchNorm2d(3) eval on [B, 3, 4, 4]", b -> {
            BatchNorm2dImpl m = new BatchNorm2dImpl(new BatchNormOptions(3));
            Tensor x = torch.randn(b, 3, 4, 4);
            Problem.warmRunningStats(m, m::forward, x);
            return Problem.mse(m, m::forward, x);
        });
        add(out, "BatchNorm3d(2) eval on [B, 2, 3, 3, 3]", b -> {
            BatchNorm3dImpl m = new BatchNorm3dImpl(new BatchNormOptions(2));
            Tensor x = torch.randn(b, 2, 3, 3, 3);
            Problem.warmRunningStats(m, m::forward, x);
            return Problem.mse(m, m::forward, x);
        });
    }

    private static InstanceNormOptions instanceNorm(long channels) {
        InstanceNormOptions o = new InstanceNormOptions(channels);
        o.affine().put(true);
        return o;
    }

    private static void recurrent(List<Configuration> out) {
        for (String kind : List.of("RNN", "GRU", "LSTM")) {
            for (long layers = 1; layers <= 2; layers++) {
                for (boolean batchFirst : new boolean[] {true, false}) {
                    for (boolean bidirectional : new boolean[] {false, true}) {
                        RecurrentSpec spec = new RecurrentSpec(kind, 3, 4, layers, batchFirst, bidirectional, true);
                        add(out, spec + " on " + (batchFirst ? "[B, T=5, 3]" : "[T=5, B, 3], batch dim 1"),
                                b -> spec.problem(b, 5));
                    }
                }
            }
        }
        RecurrentSpec relu = new RecurrentSpec("RNN_relu", 3, 4, 1, true, false, true);
        add(out, relu + " on [B, T=5, 3]", b -> relu.problem(b, 5));
        RecurrentSpec noBias = new RecurrentSpec("LSTM", 3, 4, 1, false, false, false);
        add(out, noBias + " on [T=5, B, 3], batch dim 1", b -> noBias.problem(b, 5));
        RecurrentSpec single = new RecurrentSpec("GRU", 3, 4, 2, false, true, true);
        addBatchOfOne(out, single + " on [T=5, B=1, 3], batch dim 1", b -> single.problem(1, 5));
    }

    private static void attention(List<Configuration> out) {
        for (boolean bias : new boolean[] {true, false}) {
            for (boolean biasKv : new boolean[] {false, true}) {
                add(out, "MultiheadAttention(embed 8, heads 2, bias=" + bias + ", add_bias_kv=" + biasKv
                        + ") self-attention on [L=5, B, 8], batch dim 1", b -> attention(bias, biasKv, false, b));
            }
        }
        add(out, "MultiheadAttention(embed 8, heads 2, add_zero_attn) self-attention on [L=5, B, 8], batch dim 1",
                b -> attention(true, false, true, b));
    }

    private static Problem attention(boolean bias, boolean biasKv, boolean zeroAttn, long b) {
        MultiheadAttentionOptions o = new MultiheadAttentionOptions(8, 2);
        o.bias().put(bias);
        o.add_bias_kv().put(biasKv);
        o.add_zero_attn().put(zeroAttn);
        MultiheadAttentionImpl m = new MultiheadAttentionImpl(o);
        return Problem.mse(m, x -> m.forward(x, x, x).get0(), torch.randn(5, b, 8), 1);
    }

    /** Sequential(Conv2d(1->4, k=3), ReLU, MaxPool2d(2), Flatten, Linear(36->3)), for [B, 1, 8, 8] and 3 classes. */
    public static SequentialImpl cnn() {
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("0", new Conv2dImpl(1, 4, new LongPointer(3L, 3L)));
        seq.push_back("1", new ReLUImpl());
        seq.push_back("2", Models.forSequential(new MaxPool2dImpl(new LongPointer(2L, 2L))));
        seq.push_back("3", new FlattenImpl());
        seq.push_back("4", new LinearImpl(4 * 3 * 3, 3));
        return seq;
    }

    private static void sequentials(List<Configuration> out) {
        String cnn = "Sequential(Conv2d, ReLU, MaxPool2d, Flatten, Linear) cross-entropy";
        add(out, cnn + " on [B, 1, 8, 8]", b -> Problem.crossEntropy(cnn(), torch.randn(b, 1, 8, 8), 3));
        addBatchOfOne(out, cnn + " on [B=1, 1, 8, 8]", b -> Problem.crossEntropy(cnn(), torch.randn(1, 1, 8, 8), 3));
        add(out, "Sequential(Linear(6->8), ReLU, Linear(8->3)) cross-entropy on [B, 6]", b -> {
            SequentialImpl seq = new SequentialImpl();
            seq.push_back("0", new LinearImpl(6, 8));
            seq.push_back("1", new ReLUImpl());
            seq.push_back("2", new LinearImpl(8, 3));
            return Problem.crossEntropy(seq, torch.randn(b, 6), 3);
        });
        add(out, "Sequential(Conv1d, GroupNorm, Tanh, Flatten, Linear) l1 on [B, 2, 6]", b -> {
            SequentialImpl seq = new SequentialImpl();
            seq.push_back("conv", (Conv1dImpl) ConvSpec.conv(1, 2, 4, 3).padding(1).build());
            seq.push_back("norm", new GroupNormImpl(new GroupNormOptions(2, 4)));
            seq.push_back("act", new TanhImpl());
            seq.push_back("flat", new FlattenImpl());
            seq.push_back("fc", new LinearImpl(4 * 6, 2));
            return new Problem(seq, List.of(torch.randn(b, 2, 6)), 0, Loss.L1, List.of());
        });
        add(out, "Sequential(Conv2d, BatchNorm2d eval, ReLU, AvgPool2d, Flatten, Linear) cross-entropy on [B, 2, 6, 6]",
                b -> {
                    SequentialImpl seq = new SequentialImpl();
                    seq.push_back("conv", new Conv2dImpl(2, 3, new LongPointer(3L, 3L)));
                    seq.push_back("bn", Models.forSequential(new BatchNorm2dImpl(new BatchNormOptions(3))));
                    seq.push_back("act", new ReLUImpl());
                    seq.push_back("pool", new AvgPool2dImpl(new LongPointer(2L, 2L)));
                    seq.push_back("flat", new FlattenImpl());
                    seq.push_back("fc", new LinearImpl(3 * 2 * 2, 3));
                    Tensor x = torch.randn(b, 2, 6, 6);
                    Problem.warmRunningStats(seq, seq::forward, x);
                    return Problem.crossEntropy(seq, x, 3);
                });
        add(out, "Sequential(Conv1d, InstanceNorm1d affine, BatchNorm1d eval, Flatten, Linear) mse on [B, 2, 6]", b -> {
            SequentialImpl seq = new SequentialImpl();
            seq.push_back("conv", (Conv1dImpl) ConvSpec.conv(1, 2, 3, 3).build());
            seq.push_back("in", Models.forSequential(new InstanceNorm1dImpl(instanceNorm(3))));
            seq.push_back("bn", Models.forSequential(new BatchNorm1dImpl(new BatchNormOptions(3))));
            seq.push_back("flat", new FlattenImpl());
            seq.push_back("fc", new LinearImpl(3 * 4, 2));
            Tensor x = torch.randn(b, 2, 6);
            Problem.warmRunningStats(seq, seq::forward, x);
            return Problem.mse(seq, seq::forward, x);
        });
        add(out, "Sequential(Embedding, LSTM, Linear) sum on [B, T=4]", b -> {
            SequentialImpl seq = new SequentialImpl();
            seq.push_back("emb", new EmbeddingImpl(12, 3));
            LSTMOptions lstm = new LSTMOptions(3, 5);
            lstm.batch_first().put(true);
            seq.push_back("lstm", new LSTMImpl(lstm));
            seq.push_back("fc", new LinearImpl(5, 2));
            return new Problem(seq, List.of(torch.randint(12, new long[] {b, 4})), 0, Loss.SUM, List.of());
        });
        usedTwice(out);
    }

    /** A layer that appears twice in a Sequential: one parameter (tied by identity), the sum of both uses' gradients. */
    private static void usedTwice(List<Configuration> out) {
        add(out, "Sequential(fc: Linear(4->4), ReLU, fc again) mse on [B, 4] " + USED_TWICE, b -> {
            SequentialImpl seq = new SequentialImpl();
            LinearImpl fc = new LinearImpl(4, 4);
            seq.push_back("fc", fc);
            seq.push_back("act", new ReLUImpl());
            seq.push_back("again", fc);
            return Problem.mse(seq, seq::forward, torch.randn(b, 4));
        });
        add(out, "Sequential(fc: Linear(4->4), Tanh, fc again, Linear(4->3)) cross-entropy on [B, 4] " + USED_TWICE, b -> {
            SequentialImpl seq = new SequentialImpl();
            LinearImpl fc = new LinearImpl(4, 4);
            seq.push_back("fc", fc);
            seq.push_back("act", new TanhImpl());
            seq.push_back("again", fc);
            seq.push_back("out", new LinearImpl(4, 3));
            return Problem.crossEntropy(seq, torch.randn(b, 4), 3);
        });
        add(out, "Sequential(conv: Conv2d(2->2, k=3, padding=1), ReLU, conv again) mse on [B, 2, 5, 5] " + USED_TWICE,
                b -> {
                    SequentialImpl seq = new SequentialImpl();
                    Conv2dImpl conv = (Conv2dImpl) ConvSpec.conv(2, 2, 2, 3).padding(1).build();
                    seq.push_back("conv", conv);
                    seq.push_back("act", new ReLUImpl());
                    seq.push_back("again", conv);
                    return Problem.mse(seq, seq::forward, torch.randn(b, 2, 5, 5));
                });
    }
}
