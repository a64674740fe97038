package dev.psg4j.engine;

import dev.psg4j.BadInputException;
import dev.psg4j.UnsupportedModelException;
import dev.psg4j.check.Batch;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.junit.PerSampleAssertions;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Reduction;
import dev.psg4j.engine.VmapTesting.ConvSpec;
import dev.psg4j.engine.VmapTesting.Problem;
import dev.psg4j.engine.VmapTesting.RecurrentSpec;
import dev.psg4j.model.Model;
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
import org.bytedeco.pytorch.DropoutImpl;
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
import org.bytedeco.pytorch.LayerNormImpl;
import org.bytedeco.pytorch.LayerNormOptions;
import org.bytedeco.pytorch.LSTMImpl;
import org.bytedeco.pytorch.LSTMOptions;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.MaxPool2dImpl;
import org.bytedeco.pytorch.LinearOptions;
import org.bytedeco.pytorch.LongVector;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.MultiheadAttentionImpl;
import org.bytedeco.pytorch.MultiheadAttentionOptions;
import org.bytedeco.pytorch.PReLUImpl;
import org.bytedeco.pytorch.ReLUImpl;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TanhImpl;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.kMean;
import org.bytedeco.pytorch.kSum;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.opentest4j.AssertionFailedError;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The vmap engine on C++-frontend modules built in Java, layer by layer and configuration by
 * configuration, after Opacus's grad-sample tests (opacus/tests/grad_samples): for every case the
 * vmap engine passes the check for both reductions and equals the microbatch engine within
 * 1e-5 abs / 1e-4 rel. Plus chunking, the layers the vmap engine refuses, and random ops.
 */
class FrontendVmapMatrixTest {
    /** A named configuration; the problem is made after seeding LibTorch with the name. */
    record Case(String name, Supplier<Problem> problem) {
        @Override
        public String toString() {
            return name;
        }
    }

    private static final long B = 3;

    static Stream<Case> cases() {
        List<Case> cases = new ArrayList<>();
        convolutions(cases);
        linears(cases);
        embeddings(cases);
        norms(cases);
        recurrent(cases);
        attention(cases);
        sequentials(cases);
        return cases.stream();
    }

    private static void conv(List<Case> cases, ConvSpec spec, long batch, long... size) {
        cases.add(new Case(spec + " on " + spatial(size, spec.dims()) + ", B=" + batch,
                () -> spec.problem(batch, size)));
    }

    private static String spatial(long[] size, int dims) {
        StringBuilder s = new StringBuilder();
        for (int d = 0; d < dims; d++) {
            s.append(d == 0 ? "" : "x").append(size[Math.min(d, size.length - 1)]);
        }
        return s.toString();
    }

    private static void convolutions(List<Case> cases) {
        for (int dims = 1; dims <= 3; dims++) {
            long size = dims == 3 ? 5 : 7;
            ConvSpec base = ConvSpec.conv(dims, 2, 4, 3);
            conv(cases, base, B, size);
            conv(cases, base.stride(2), B, size);
            conv(cases, base.padding(1), B, size);
            conv(cases, base.padding(2).stride(2), B, size);
            conv(cases, base.padding("same"), B, size);
            conv(cases, base.padding("valid"), B, size);
            conv(cases, base.dilation(2), B, size);
            conv(cases, base.padding("same").dilation(2), B, size);
            conv(cases, base.groups(2), B, size);
            conv(cases, ConvSpec.conv(dims, 3, 3, 3).groups(3), B, size);          // depthwise
            conv(cases, ConvSpec.conv(dims, 2, 4, 3).groups(2).noBias(), B, size); // depthwise, multiplier 2
            conv(cases, base.noBias(), B, size);
            conv(cases, ConvSpec.conv(dims, 2, 4, 2).padding("same"), B, size);    // even kernel: asymmetric padding
            conv(cases, ConvSpec.conv(dims, 1, 2, 1), B, size);

            ConvSpec t = ConvSpec.transposed(dims, 2, 4, 3);
            long tsize = dims == 3 ? 3 : 4;
            conv(cases, t, B, tsize);
            conv(cases, t.stride(2), B, tsize);
            conv(cases, t.stride(2).padding(1).outputPadding(1), B, tsize);
            conv(cases, t.groups(2), B, tsize);
            conv(cases, t.stride(2).groups(2).noBias(), B, tsize);
            conv(cases, t.dilation(2), B, tsize);
        }
    }

    private static Problem linear(long in, long out, boolean bias, long[] shape, int batchDim) {
        LinearOptions o = new LinearOptions(in, out);
        o.bias().put(bias);
        LinearImpl m = new LinearImpl(o);
        return Problem.mse(m, m::forward, torch.randn(shape), batchDim);
    }

    private static void linears(List<Case> cases) {
        cases.add(new Case("Linear(5->3) on [B, 5]", () -> linear(5, 3, true, new long[] {B, 5}, 0)));
        cases.add(new Case("Linear(5->3, bias=false) on [B, 5]", () -> linear(5, 3, false, new long[] {B, 5}, 0)));
        cases.add(new Case("Linear(5->3) on [B, 4, 5]", () -> linear(5, 3, true, new long[] {B, 4, 5}, 0)));
        cases.add(new Case("Linear(5->3) on [B, 2, 3, 5]", () -> linear(5, 3, true, new long[] {B, 2, 3, 5}, 0)));
        cases.add(new Case("Linear(5->3) time-first on [T=4, B, 5], batch dim 1",
                () -> linear(5, 3, true, new long[] {4, B, 5}, 1)));
        cases.add(new Case("Linear(5->3) on [B=1, 5] (batch of 1)", () -> linear(5, 3, true, new long[] {1, 5}, 0)));
        cases.add(new Case("Bilinear(3, 4 -> 2) on [B, 3], [B, 4]", () -> bilinear(true)));
        cases.add(new Case("Bilinear(3, 4 -> 2, bias=false) on [B, 3], [B, 4]", () -> bilinear(false)));
    }

    private static Problem bilinear(boolean bias) {
        BilinearOptions o = new BilinearOptions(3, 4, 2);
        o.bias().put(bias);
        BilinearImpl m = new BilinearImpl(o);
        Tensor x1 = torch.randn(B, 3);
        Tensor x2 = torch.randn(B, 4);
        Tensor y = torch.randn(B, 2);
        return new Problem(m, List.of(x1, x2), 0, Loss.MSE, List.of(y));
    }

    private static void embeddings(List<Case> cases) {
        cases.add(new Case("Embedding(10, 4) on [B, 5]", () -> {
            EmbeddingImpl m = new EmbeddingImpl(10, 4);
            return Problem.mse(m, m::forward, torch.randint(10, new long[] {B, 5}));
        }));
        cases.add(new Case("Embedding(10, 4) on [B, 2, 3]", () -> {
            EmbeddingImpl m = new EmbeddingImpl(10, 4);
            return Problem.mse(m, m::forward, torch.randint(10, new long[] {B, 2, 3}));
        }));
        for (String mode : List.of("sum", "mean")) {
            cases.add(new Case("EmbeddingBag(10, 4, mode=" + mode + ") on bags [B, 5]", () -> {
                EmbeddingBagOptions o = new EmbeddingBagOptions(10, 4);
                if (mode.equals("sum")) {
                    o.mode().put(new kSum());
                } else {
                    o.mode().put(new kMean());
                }
                EmbeddingBagImpl m = new EmbeddingBagImpl(o);
                return Problem.mse(m, m::forward, torch.randint(10, new long[] {B, 5}));
            }));
        }
    }

    private static void norms(List<Case> cases) {
        cases.add(new Case("LayerNorm([6]) on [B, 6]", () -> {
            LayerNormImpl m = new LayerNormImpl(new LayerNormOptions(new LongVector(new long[] {6})));
            return Problem.mse(m, m::forward, torch.randn(B, 6));
        }));
        cases.add(new Case("LayerNorm([6]) on [B, 4, 6]", () -> {
            LayerNormImpl m = new LayerNormImpl(new LayerNormOptions(new LongVector(new long[] {6})));
            return Problem.mse(m, m::forward, torch.randn(B, 4, 6));
        }));
        cases.add(new Case("LayerNorm([4, 6]) on [B, 4, 6]", () -> {
            LayerNormImpl m = new LayerNormImpl(new LayerNormOptions(new LongVector(new long[] {4, 6})));
            return Problem.mse(m, m::forward, torch.randn(B, 4, 6));
        }));
        cases.add(new Case("GroupNorm(2 groups, 4 channels) on [B, 4, 5]", () -> {
            GroupNormImpl m = new GroupNormImpl(new GroupNormOptions(2, 4));
            return Problem.mse(m, m::forward, torch.randn(B, 4, 5));
        }));
        cases.add(new Case("GroupNorm(3 groups, 6 channels) on [B, 6, 3, 3]", () -> {
            GroupNormImpl m = new GroupNormImpl(new GroupNormOptions(3, 6));
            return Problem.mse(m, m::forward, torch.randn(B, 6, 3, 3));
        }));
        cases.add(new Case("GroupNorm(1 group, 4 channels) on [B, 4, 3, 3]", () -> {
            GroupNormImpl m = new GroupNormImpl(new GroupNormOptions(1, 4));
            return Problem.mse(m, m::forward, torch.randn(B, 4, 3, 3));
        }));
        cases.add(new Case("InstanceNorm1d(3, affine) on [B, 3, 6]", () -> {
            InstanceNorm1dImpl m = new InstanceNorm1dImpl(instanceNorm(3));
            return Problem.mse(m, m::forward, torch.randn(B, 3, 6));
        }));
        cases.add(new Case("InstanceNorm2d(3, affine) on [B, 3, 4, 4]", () -> {
            InstanceNorm2dImpl m = new InstanceNorm2dImpl(instanceNorm(3));
            return Problem.mse(m, m::forward, torch.randn(B, 3, 4, 4));
        }));
        cases.add(new Case("InstanceNorm3d(3, affine) on [B, 3, 3, 3, 3]", () -> {
            InstanceNorm3dImpl m = new InstanceNorm3dImpl(instanceNorm(3));
            return Problem.mse(m, m::forward, torch.randn(B, 3, 3, 3, 3));
        }));
        cases.add(new Case("BatchNorm1d(4) eval on [B, 4]", () -> {
            BatchNorm1dImpl m = new BatchNorm1dImpl(new BatchNormOptions(4));
            Tensor x = torch.randn(B, 4);
            VmapTesting.warmRunningStats(m, m::forward, x);
            return Problem.mse(m, m::forward, x);
        }));
        cases.add(new Case("BatchNorm1d(4) eval on [B, 4, 5]", () -> {
            BatchNorm1dImpl m = new BatchNorm1dImpl(new BatchNormOptions(4));
            Tensor x = torch.randn(B, 4, 5);
            VmapTesting.warmRunningStats(m, m::forward, x);
            return Problem.mse(m, m::forward, x);
        }));
        cases.add(new Case("BatchNorm2d(3) eval on [B, 3, 4, 4]", () -> {
            BatchNorm2dImpl m = new BatchNorm2dImpl(new BatchNormOptions(3));
            Tensor x = torch.randn(B, 3, 4, 4);
            VmapTesting.warmRunningStats(m, m::forward, x);
            return Problem.mse(m, m::forward, x);
        }));
        cases.add(new Case("BatchNorm3d(2) eval on [B, 2, 3, 3, 3]", () -> {
            BatchNorm3dImpl m = new BatchNorm3dImpl(new BatchNormOptions(2));
            Tensor x = torch.randn(B, 2, 3, 3, 3);
            VmapTesting.warmRunningStats(m, m::forward, x);
            return Problem.mse(m, m::forward, x);
        }));
    }

    private static InstanceNormOptions instanceNorm(long channels) {
        InstanceNormOptions o = new InstanceNormOptions(channels);
        o.affine().put(true);
        return o;
    }

    private static void recurrent(List<Case> cases) {
        for (String kind : List.of("RNN", "GRU", "LSTM")) {
            for (long layers = 1; layers <= 2; layers++) {
                for (boolean batchFirst : new boolean[] {true, false}) {
                    for (boolean bidirectional : new boolean[] {false, true}) {
                        RecurrentSpec spec = new RecurrentSpec(kind, 3, 4, layers, batchFirst, bidirectional, true);
                        cases.add(new Case(spec + " on " + (batchFirst ? "[B, T=5, 3]" : "[T=5, B, 3], batch dim 1"),
                                () -> spec.problem(B, 5)));
                    }
                }
            }
        }
        RecurrentSpec relu = new RecurrentSpec("RNN_relu", 3, 4, 1, true, false, true);
        cases.add(new Case(relu + " on [B, T=5, 3]", () -> relu.problem(B, 5)));
        RecurrentSpec noBias = new RecurrentSpec("LSTM", 3, 4, 1, false, false, false);
        cases.add(new Case(noBias + " on [T=5, B, 3], batch dim 1", () -> noBias.problem(B, 5)));
        RecurrentSpec single = new RecurrentSpec("GRU", 3, 4, 2, false, true, true);
        cases.add(new Case(single + " on [T=5, B=1, 3], batch dim 1 (batch of 1)", () -> single.problem(1, 5)));
    }

    private static void attention(List<Case> cases) {
        for (boolean bias : new boolean[] {true, false}) {
            for (boolean biasKv : new boolean[] {false, true}) {
                cases.add(new Case("MultiheadAttention(embed 8, heads 2, bias=" + bias + ", add_bias_kv=" + biasKv
                        + ") self-attention on [L=5, B, 8], batch dim 1", () -> attention(bias, biasKv, false)));
            }
        }
        cases.add(new Case("MultiheadAttention(embed 8, heads 2, add_zero_attn) self-attention on [L=5, B, 8], "
                + "batch dim 1", () -> attention(true, false, true)));
    }

    private static Problem attention(boolean bias, boolean biasKv, boolean zeroAttn) {
        MultiheadAttentionOptions o = new MultiheadAttentionOptions(8, 2);
        o.bias().put(bias);
        o.add_bias_kv().put(biasKv);
        o.add_zero_attn().put(zeroAttn);
        MultiheadAttentionImpl m = new MultiheadAttentionImpl(o);
        return Problem.mse(m, x -> m.forward(x, x, x).get0(), torch.randn(5, B, 8), 1);
    }

    static SequentialImpl cnn() {
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("0", new Conv2dImpl(1, 4, new LongPointer(3L, 3L)));
        seq.push_back("1", new ReLUImpl());
        seq.push_back("2", Models.forSequential(new MaxPool2dImpl(new LongPointer(2L, 2L))));
        seq.push_back("3", new FlattenImpl());
        seq.push_back("4", new LinearImpl(4 * 3 * 3, 3));
        return seq;
    }

    private static void sequentials(List<Case> cases) {
        cases.add(new Case("Sequential(Conv2d, ReLU, MaxPool2d, Flatten, Linear) cross-entropy on [B, 1, 8, 8]",
                () -> new Problem(cnn(), List.of(torch.randn(4, 1, 8, 8)), 0, Loss.CROSS_ENTROPY,
                        List.of(torch.randint(3, new long[] {4})))));
        cases.add(new Case("Sequential(Conv2d, ReLU, MaxPool2d, Flatten, Linear) cross-entropy on [B=1, 1, 8, 8] "
                + "(batch of 1)", () -> new Problem(cnn(), List.of(torch.randn(1, 1, 8, 8)), 0, Loss.CROSS_ENTROPY,
                List.of(torch.randint(3, new long[] {1})))));
        cases.add(new Case("Sequential(Conv1d, GroupNorm, Tanh, Flatten, Linear) l1 on [B, 2, 6]", () -> {
            SequentialImpl seq = new SequentialImpl();
            seq.push_back("conv", (Conv1dImpl) ConvSpec.conv(1, 2, 4, 3).padding(1).build());
            seq.push_back("norm", new GroupNormImpl(new GroupNormOptions(2, 4)));
            seq.push_back("act", new TanhImpl());
            seq.push_back("flat", new FlattenImpl());
            seq.push_back("fc", new LinearImpl(4 * 6, 2));
            return new Problem(seq, List.of(torch.randn(B, 2, 6)), 0, Loss.L1, List.of());
        }));
        cases.add(new Case("Sequential(Conv2d, BatchNorm2d eval, ReLU, AvgPool2d, Flatten, Linear) cross-entropy "
                + "on [B, 2, 6, 6]", () -> {
            SequentialImpl seq = new SequentialImpl();
            seq.push_back("conv", new Conv2dImpl(2, 3, new LongPointer(3L, 3L)));
            seq.push_back("bn", new BatchNorm2dImpl(new BatchNormOptions(3)));
            seq.push_back("act", new ReLUImpl());
            seq.push_back("pool", new AvgPool2dImpl(new LongPointer(2L, 2L)));
            seq.push_back("flat", new FlattenImpl());
            seq.push_back("fc", new LinearImpl(3 * 2 * 2, 3));
            Tensor x = torch.randn(B, 2, 6, 6);
            VmapTesting.warmRunningStats(seq, seq::forward, x);
            return new Problem(seq, List.of(x), 0, Loss.CROSS_ENTROPY, List.of(torch.randint(3, new long[] {B})));
        }));
        cases.add(new Case("Sequential(Conv1d, InstanceNorm1d affine, BatchNorm1d eval, Flatten, Linear) mse "
                + "on [B, 2, 6]", () -> {
            SequentialImpl seq = new SequentialImpl();
            seq.push_back("conv", (Conv1dImpl) ConvSpec.conv(1, 2, 3, 3).build());
            seq.push_back("in", new InstanceNorm1dImpl(instanceNorm(3)));
            BatchNorm1dImpl bn = Models.forSequential(new BatchNorm1dImpl(new BatchNormOptions(3)));
            seq.push_back("bn", bn);
            seq.push_back("flat", new FlattenImpl());
            seq.push_back("fc", new LinearImpl(3 * 4, 2));
            Tensor x = torch.randn(B, 2, 6);
            VmapTesting.warmRunningStats(seq, seq::forward, x);
            return Problem.mse(seq, seq::forward, x);
        }));
        cases.add(new Case("Sequential(Embedding, LSTM, Linear) sum on [B, T=4]", () -> {
            SequentialImpl seq = new SequentialImpl();
            seq.push_back("emb", new EmbeddingImpl(12, 3));
            LSTMOptions lstm = new LSTMOptions(3, 5);
            lstm.batch_first().put(true);
            seq.push_back("lstm", new LSTMImpl(lstm));
            seq.push_back("fc", new LinearImpl(5, 2));
            return new Problem(seq, List.of(torch.randint(12, new long[] {B, 4})), 0, Loss.SUM, List.of());
        }));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void vmapPassesTheCheckAndEqualsMicrobatch(Case c) {
        torch.manual_seed(c.name().hashCode());
        VmapTesting.assertVmapCorrect(c.name(), c.problem().get(), Engines.vmap());
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Reduction.class)
    void chunksOfTwoOnABatchOfFive(Reduction reduction) {
        torch.manual_seed(11);
        SequentialImpl seq = cnn();
        Problem problem = new Problem(seq, List.of(torch.randn(5, 1, 8, 8)), 0, Loss.CROSS_ENTROPY,
                List.of(torch.randint(3, new long[] {5})));
        VmapTesting.assertVmapCorrect("cnn, B=5, chunk size 2", problem, Engines.vmap().chunkSize(2), reduction);
        RecurrentSpec lstm = new RecurrentSpec("LSTM", 3, 4, 2, false, true, true);
        VmapTesting.assertVmapCorrect(lstm + ", B=5, chunk size 2", lstm.problem(5, 4), Engines.vmap().chunkSize(2),
                reduction);
    }

    /** The harness is not vacuous: one sample's gradient off by 1% fails it, with the case and the table. */
    @Test
    void theMatrixAssertionCatchesAWrongEngine() {
        torch.manual_seed(10);
        GradSampler sabotaged = new GradSampler() {
            @Override
            public String name() {
                return "vmap with sample 1 of fc.weight scaled";
            }

            @Override
            public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
                Map<String, Tensor> grads = new LinkedHashMap<>(Engines.vmap().perSampleGradients(model, batch, loss,
                        reduction));
                Tensor w = grads.get("fc.weight").clone();
                w.select(0, 1).mul_(new Scalar(1.01));
                grads.put("fc.weight", w);
                return grads;
            }
        };
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("fc", new LinearImpl(5, 3));
        Problem problem = Problem.mse(seq, seq::forward, torch.randn(B, 5));
        AssertionFailedError e = assertThrows(AssertionFailedError.class,
                () -> VmapTesting.assertVmapCorrect("sabotage case", problem, sabotaged));
        assertTrue(e.getMessage().startsWith("sabotage case: "), e::getMessage);
        assertTrue(e.getMessage().contains("fc.weight") && e.getMessage().contains("MISMATCH"), e::getMessage);
    }

    @Test
    void chunkedEqualsOnePass() {
        torch.manual_seed(12);
        SequentialImpl seq = cnn();
        Tensor x = torch.randn(5, 1, 8, 8);
        Tensor y = torch.randint(3, new long[] {5});
        try (Model model = Models.module(seq);
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(x).targets(y)
                     .loss(Loss.CROSS_ENTROPY).build()) {
            for (Reduction reduction : Reduction.values()) {
                Map<String, Tensor> whole = Engines.vmap().perSampleGradients(model, check.batch(), check.loss(),
                        reduction);
                Map<String, Tensor> chunked = Engines.vmap().chunkSize(2).perSampleGradients(model, check.batch(),
                        check.loss(), reduction);
                for (String name : whole.keySet()) {
                    assertEquals(5, chunked.get(name).size(0), name);
                    assertTrue(torch.allclose(chunked.get(name), whole.get(name), VmapTesting.RTOL, VmapTesting.ATOL,
                            false), reduction + " " + name);
                }
            }
        }
    }

    @Test
    void aStandardLayerTheRegistryDoesNotKnowIsBadInputNamingItForVmapButRunsInMicrobatch() {
        torch.manual_seed(13);
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("fc", new LinearImpl(4, 3));
        seq.push_back("prelu", new PReLUImpl());
        Tensor x = torch.randn(B, 4);
        try (Model model = Models.module(seq);
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(x).build()) {
            BadInputException e = assertThrows(BadInputException.class, () -> check.run(Engines.vmap()));
            assertTrue(e.getMessage().contains("PReLU"), e::getMessage);
            assertTrue(e.getMessage().contains("microbatch"), e::getMessage);
            PerSampleAssertions.assertCorrect(check.run(Engines.microbatch()));
        }
    }

    @Test
    void aCustomModuleWithAParameterIsBadInputNamingItForVmap() {
        torch.manual_seed(14);
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("fc", new LinearImpl(4, 3));
        Module custom = new Module("Custom");
        custom.register_parameter("scale", torch.ones(3), true);
        // A Sequential runs only the modules pushed into it; a plain Module has no forward to push,
        // so it joins as a registered child: a parameter the vmap engine must swap but cannot.
        seq.register_module("custom", custom);
        Tensor x = torch.randn(B, 4);
        try (Model model = Models.module(seq);
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(x).build()) {
            assertTrue(model.trainableParameters().containsKey("custom.scale"), () -> model.trainableParameters()
                    .keySet().toString());
            BadInputException e = assertThrows(BadInputException.class, () -> check.run(Engines.vmap()));
            assertTrue(e.getMessage().contains("Custom"), e::getMessage);
            assertTrue(e.getMessage().contains("microbatch"), e::getMessage);
        }
    }

    private static SequentialImpl dropoutModel() {
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("fc", new LinearImpl(4, 3));
        seq.push_back("drop", new DropoutImpl(0.5));
        seq.train(true);
        return seq;
    }

    @Test
    void dropoutInTrainModeIsUnsupportedUnderRandomnessError() {
        torch.manual_seed(15);
        SequentialImpl seq = dropoutModel();
        try (Model model = Models.module(seq);
             // probes(false): with them the check stops at the non-deterministic forward (ProbesTest)
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(torch.randn(B, 4)).probes(false).build()) {
            UnsupportedModelException e = assertThrows(UnsupportedModelException.class,
                    () -> check.run(Engines.vmap()));
            assertTrue(e.getMessage().contains("randomness"), e::getMessage);
            assertTrue(e.getMessage().contains("aten::dropout"), e::getMessage);
        }
    }

    @ParameterizedTest(name = "randomness {0}")
    @EnumSource(value = Randomness.class, names = {"DIFFERENT", "SAME"})
    void dropoutInTrainModeRunsWithRandomnessAllowed(Randomness randomness) {
        torch.manual_seed(16);
        SequentialImpl seq = dropoutModel();
        Tensor x = torch.randn(B, 4);
        try (Model model = Models.module(seq);
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(x).build()) {
            for (Reduction reduction : Reduction.values()) {
                Map<String, Tensor> grads = Engines.vmap().randomness(randomness).perSampleGradients(model,
                        check.batch(), check.loss(), reduction);
                assertEquals(List.of("fc.weight", "fc.bias"), List.copyOf(grads.keySet()));
                assertEquals(List.of(B, 3L, 4L), VmapTesting.shape(grads.get("fc.weight")));
                assertEquals(List.of(B, 3L), VmapTesting.shape(grads.get("fc.bias")));
                assertTrue(torch.isfinite(grads.get("fc.weight")).all().item_bool(), "finite gradients");
            }
        }
    }
}
