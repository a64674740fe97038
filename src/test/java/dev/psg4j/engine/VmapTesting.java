package dev.psg4j.engine;

import dev.psg4j.GradAssertions;
import dev.psg4j.Psg4jException;
import dev.psg4j.check.Batch;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.junit.PerSampleAssertions;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Reduction;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;

import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.Conv1dImpl;
import org.bytedeco.pytorch.Conv1dOptions;
import org.bytedeco.pytorch.Conv1dPadding;
import org.bytedeco.pytorch.Conv2dImpl;
import org.bytedeco.pytorch.Conv2dOptions;
import org.bytedeco.pytorch.Conv2dPadding;
import org.bytedeco.pytorch.Conv3dImpl;
import org.bytedeco.pytorch.Conv3dOptions;
import org.bytedeco.pytorch.Conv3dPadding;
import org.bytedeco.pytorch.ConvTranspose1dImpl;
import org.bytedeco.pytorch.ConvTranspose1dOptions;
import org.bytedeco.pytorch.ConvTranspose2dImpl;
import org.bytedeco.pytorch.ConvTranspose2dOptions;
import org.bytedeco.pytorch.ConvTranspose3dImpl;
import org.bytedeco.pytorch.ConvTranspose3dOptions;
import org.bytedeco.pytorch.GRUImpl;
import org.bytedeco.pytorch.GRUOptions;
import org.bytedeco.pytorch.LSTMImpl;
import org.bytedeco.pytorch.LSTMOptions;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.RNNImpl;
import org.bytedeco.pytorch.RNNOptions;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.kSame;
import org.bytedeco.pytorch.kValid;
import org.opentest4j.AssertionFailedError;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Shared by the vmap matrix and property tests: standard C++-frontend layers built in Java from a
 * readable spec, and the assertion that the vmap engine passes the check and equals the microbatch
 * engine.
 */
final class VmapTesting {
    /** vmap against microbatch: |vmap - microbatch| <= ATOL + RTOL * |microbatch|, per element. */
    static final double ATOL = 1e-5;
    static final double RTOL = 1e-4;

    private VmapTesting() {
    }

    /**
     * One check: a module, its batch and its loss. With {@link Loss#MSE} and no targets, the
     * targets are drawn with the shape of the module's output ({@code forward} runs it in Java).
     */
    record Problem(Module module, List<Tensor> inputs, int batchDim, Loss loss, List<Tensor> targets) {
        static Problem mse(Module module, UnaryOperator<Tensor> forward, Tensor x, int batchDim) {
            Tensor out;
            try (NoGradGuard noGrad = new NoGradGuard()) {
                out = forward.apply(x);
            }
            return new Problem(module, List.of(x), batchDim, Loss.MSE, List.of(torch.randn_like(out)));
        }

        static Problem mse(Module module, UnaryOperator<Tensor> forward, Tensor x) {
            return mse(module, forward, x, 0);
        }

        /** The same module and inputs under {@code other}: l1 and sum against zeros (no targets), mse as is. */
        Problem withLoss(Loss other) {
            if (other == loss) {
                return this;
            }
            if (other != Loss.L1 && other != Loss.SUM) {
                throw new IllegalArgumentException("only l1 and sum need no targets: " + other);
            }
            return new Problem(module, inputs, batchDim, other, List.of());
        }
    }

    /**
     * Runs {@code engine} (the vmap engine, or a sabotaged one) in a check of {@code problem} for {@code reductions}, asserts it passes
     * (failing with the verdict table), and asserts its gradients equal the microbatch engine's
     * within {@link #ATOL}/{@link #RTOL}. {@code config} heads every failure message.
     */
    static void assertVmapCorrect(String config, Problem problem, GradSampler engine, Reduction... reductions) {
        problem.module().eval();
        String engineName = engine instanceof VmapEngine ? engine.toString() : engine.name();
        Map<Reduction, Map<String, Tensor>> seen = new EnumMap<>(Reduction.class);
        GradSampler recording = new GradSampler() {
            @Override
            public String name() {
                return engineName;
            }

            @Override
            public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
                Map<String, Tensor> grads = engine.perSampleGradients(model, batch, loss, reduction);
                // The check closes the handles it is given: keep handles of our own.
                Map<String, Tensor> kept = new java.util.LinkedHashMap<>();
                grads.forEach((name, t) -> kept.put(name, new Tensor(t)));
                seen.put(reduction, kept);
                return grads;
            }
        };
        try (Model model = Models.module(problem.module());
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(problem.inputs())
                     .targets(problem.targets()).batchDim(problem.batchDim()).loss(problem.loss())
                     .reductions(reductions.length == 0 ? Reduction.values() : reductions).build()) {
            CheckReport report;
            try {
                report = check.run(recording);
            } catch (Psg4jException e) {
                throw new AssertionFailedError(config + ": engine " + engineName + " threw "
                        + e.getClass().getSimpleName() + ": " + e.getMessage(), e);
            }
            try {
                PerSampleAssertions.assertCorrect(report);
            } catch (AssertionFailedError e) {
                throw new AssertionFailedError(config + ": " + e.getMessage(), e);
            }
            assertEquals(check.reductions().size(), seen.size(), config);
            for (Reduction reduction : check.reductions()) {
                Map<String, Tensor> vmap = seen.get(reduction);
                Map<String, Tensor> micro = Engines.microbatch().perSampleGradients(model, check.batch(),
                        check.loss(), reduction);
                GradAssertions.assertClose(micro, vmap, ATOL, RTOL, config + " " + reduction.label() + " vmap vs microbatch");
            }
        }
    }

    static List<Long> shape(Tensor t) {
        List<Long> out = new ArrayList<>();
        for (int d = 0; d < t.dim(); d++) {
            out.add(t.size(d));
        }
        return out;
    }

    /** Runs {@code forward} a few times in train mode (no grad), so eval-mode running stats are not the defaults. */
    static void warmRunningStats(Module module, UnaryOperator<Tensor> forward, Tensor sample) {
        module.train(true);
        try (NoGradGuard noGrad = new NoGradGuard()) {
            for (int k = 0; k < 3; k++) {
                forward.apply(torch.randn_like(sample).mul(new org.bytedeco.pytorch.Scalar(2.0))
                        .add(new org.bytedeco.pytorch.Scalar(0.5)));
            }
        }
        module.eval();
    }

    static LongPointer filled(int dims, long value) {
        long[] values = new long[dims];
        java.util.Arrays.fill(values, value);
        return new LongPointer(values);
    }

    private static void fill(LongPointer target, int dims, long value) {
        for (int k = 0; k < dims; k++) {
            target.put(k, value);
        }
    }

    /**
     * A Conv{1,2,3}d or ConvTranspose{1,2,3}d. {@code padding} is a number, "same" or "valid"
     * (the last two for plain convolutions only); {@code outputPadding} for transposed ones only.
     */
    record ConvSpec(int dims, boolean transposed, long in, long out, long kernel, long stride, String padding,
                    long dilation, long groups, boolean bias, long outputPadding) {
        static ConvSpec conv(int dims, long in, long out, long kernel) {
            return new ConvSpec(dims, false, in, out, kernel, 1, "0", 1, 1, true, 0);
        }

        static ConvSpec transposed(int dims, long in, long out, long kernel) {
            return new ConvSpec(dims, true, in, out, kernel, 1, "0", 1, 1, true, 0);
        }

        ConvSpec stride(long s) {
            return new ConvSpec(dims, transposed, in, out, kernel, s, padding, dilation, groups, bias, outputPadding);
        }

        ConvSpec padding(String p) {
            return new ConvSpec(dims, transposed, in, out, kernel, stride, p, dilation, groups, bias, outputPadding);
        }

        ConvSpec padding(long p) {
            return padding(Long.toString(p));
        }

        ConvSpec dilation(long d) {
            return new ConvSpec(dims, transposed, in, out, kernel, stride, padding, d, groups, bias, outputPadding);
        }

        ConvSpec groups(long g) {
            return new ConvSpec(dims, transposed, in, out, kernel, stride, padding, dilation, g, bias, outputPadding);
        }

        ConvSpec noBias() {
            return new ConvSpec(dims, transposed, in, out, kernel, stride, padding, dilation, groups, false, outputPadding);
        }

        ConvSpec outputPadding(long p) {
            return new ConvSpec(dims, transposed, in, out, kernel, stride, padding, dilation, groups, bias, p);
        }

        /** The input's spatial extent at which the (effective) kernel fits at least {@code extra} + 1 times. */
        long minimalInput(long extra) {
            return dilation * (kernel - 1) + 1 + extra;
        }

        @Override
        public String toString() {
            StringBuilder s = new StringBuilder(transposed ? "ConvTranspose" : "Conv").append(dims).append("d(")
                    .append(in).append("->").append(out).append(", k=").append(kernel);
            if (stride != 1) {
                s.append(", stride=").append(stride);
            }
            if (!padding.equals("0")) {
                s.append(", padding=").append(padding);
            }
            if (outputPadding != 0) {
                s.append(", output_padding=").append(outputPadding);
            }
            if (dilation != 1) {
                s.append(", dilation=").append(dilation);
            }
            if (groups != 1) {
                s.append(", groups=").append(groups);
            }
            if (!bias) {
                s.append(", bias=false");
            }
            return s.append(')').toString();
        }

        /** The module this spec describes. */
        Module build() {
            LongPointer k = filled(dims, kernel);
            if (transposed) {
                return switch (dims) {
                    case 1 -> {
                        ConvTranspose1dOptions o = new ConvTranspose1dOptions(in, out, k);
                        fillTransposed(o.stride(), o.padding(), o.output_padding(), o.dilation());
                        o.groups().put(groups);
                        o.bias().put(bias);
                        yield new ConvTranspose1dImpl(o);
                    }
                    case 2 -> {
                        ConvTranspose2dOptions o = new ConvTranspose2dOptions(in, out, k);
                        fillTransposed(o.stride(), o.padding(), o.output_padding(), o.dilation());
                        o.groups().put(groups);
                        o.bias().put(bias);
                        yield new ConvTranspose2dImpl(o);
                    }
                    case 3 -> {
                        ConvTranspose3dOptions o = new ConvTranspose3dOptions(in, out, k);
                        fillTransposed(o.stride(), o.padding(), o.output_padding(), o.dilation());
                        o.groups().put(groups);
                        o.bias().put(bias);
                        yield new ConvTranspose3dImpl(o);
                    }
                    default -> throw new IllegalArgumentException(toString());
                };
            }
            return switch (dims) {
                case 1 -> {
                    Conv1dOptions o = new Conv1dOptions(in, out, k);
                    fill(o.stride(), dims, stride);
                    fill(o.dilation(), dims, dilation);
                    o.groups().put(groups);
                    o.bias().put(bias);
                    Conv1dPadding p = o.padding();
                    switch (padding) {
                        case "same" -> p.put(new kSame());
                        case "valid" -> p.put(new kValid());
                        default -> p.put(filled(dims, Long.parseLong(padding)));
                    }
                    yield new Conv1dImpl(o);
                }
                case 2 -> {
                    Conv2dOptions o = new Conv2dOptions(in, out, k);
                    fill(o.stride(), dims, stride);
                    fill(o.dilation(), dims, dilation);
                    o.groups().put(groups);
                    o.bias().put(bias);
                    Conv2dPadding p = o.padding();
                    switch (padding) {
                        case "same" -> p.put(new kSame());
                        case "valid" -> p.put(new kValid());
                        default -> p.put(filled(dims, Long.parseLong(padding)));
                    }
                    yield new Conv2dImpl(o);
                }
                case 3 -> {
                    Conv3dOptions o = new Conv3dOptions(in, out, k);
                    fill(o.stride(), dims, stride);
                    fill(o.dilation(), dims, dilation);
                    o.groups().put(groups);
                    o.bias().put(bias);
                    Conv3dPadding p = o.padding();
                    switch (padding) {
                        case "same" -> p.put(new kSame());
                        case "valid" -> p.put(new kValid());
                        default -> p.put(filled(dims, Long.parseLong(padding)));
                    }
                    yield new Conv3dImpl(o);
                }
                default -> throw new IllegalArgumentException(toString());
            };
        }

        private void fillTransposed(LongPointer s, LongPointer p, LongPointer op, LongPointer d) {
            fill(s, dims, stride);
            fill(p, dims, Long.parseLong(padding));
            fill(op, dims, outputPadding);
            fill(d, dims, dilation);
        }

        /** The Java forward of a module this spec built. */
        static Tensor forward(Module m, Tensor x) {
            if (m instanceof Conv1dImpl c) {
                return c.forward(x);
            } else if (m instanceof Conv2dImpl c) {
                return c.forward(x);
            } else if (m instanceof Conv3dImpl c) {
                return c.forward(x);
            } else if (m instanceof ConvTranspose1dImpl c) {
                return c.forward(x);
            } else if (m instanceof ConvTranspose2dImpl c) {
                return c.forward(x);
            } else if (m instanceof ConvTranspose3dImpl c) {
                return c.forward(x);
            }
            throw new IllegalArgumentException(m.getClass().getName());
        }

        /** The problem: a batch of {@code batch} inputs of spatial extent {@code size}, MSE against random targets. */
        Problem problem(long batch, long... size) {
            Module m = build();
            long[] shape = new long[2 + dims];
            shape[0] = batch;
            shape[1] = in;
            for (int d = 0; d < dims; d++) {
                shape[2 + d] = size[Math.min(d, size.length - 1)];
            }
            return Problem.mse(m, x -> forward(m, x), torch.randn(shape));
        }
    }

    /** RNN, LSTM or GRU. */
    record RecurrentSpec(String kind, long input, long hidden, long layers, boolean batchFirst, boolean bidirectional,
                         boolean bias) {
        @Override
        public String toString() {
            return kind + "(" + input + "->" + hidden + ", layers=" + layers + ", batch_first=" + batchFirst
                    + ", bidirectional=" + bidirectional + (bias ? "" : ", bias=false") + ")";
        }

        /** A batch of {@code batch} sequences of length {@code length}: time-first (batch dim 1) unless batch_first. */
        Problem problem(long batch, long length) {
            Tensor x = batchFirst ? torch.randn(batch, length, input) : torch.randn(length, batch, input);
            int batchDim = batchFirst ? 0 : 1;
            return switch (kind) {
                case "RNN", "RNN_relu" -> {
                    RNNOptions o = new RNNOptions(input, hidden);
                    o.num_layers().put(layers);
                    o.batch_first().put(batchFirst);
                    o.bidirectional().put(bidirectional);
                    o.bias().put(bias);
                    if (kind.equals("RNN_relu")) {
                        o.nonlinearity().put(new org.bytedeco.pytorch.kReLU());
                    }
                    RNNImpl m = new RNNImpl(o);
                    yield Problem.mse(m, t -> m.forward(t).get0(), x, batchDim);
                }
                case "LSTM" -> {
                    LSTMOptions o = new LSTMOptions(input, hidden);
                    o.num_layers().put(layers);
                    o.batch_first().put(batchFirst);
                    o.bidirectional().put(bidirectional);
                    o.bias().put(bias);
                    LSTMImpl m = new LSTMImpl(o);
                    yield Problem.mse(m, t -> m.forward(t).get0(), x, batchDim);
                }
                case "GRU" -> {
                    GRUOptions o = new GRUOptions(input, hidden);
                    o.num_layers().put(layers);
                    o.batch_first().put(batchFirst);
                    o.bidirectional().put(bidirectional);
                    o.bias().put(bias);
                    GRUImpl m = new GRUImpl(o);
                    yield Problem.mse(m, t -> m.forward(t).get0(), x, batchDim);
                }
                default -> throw new IllegalArgumentException(kind);
            };
        }
    }
}
