package dev.psg4j.conform;

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
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.kSame;
import org.bytedeco.pytorch.kValid;

/**
 * A Conv{1,2,3}d or ConvTranspose{1,2,3}d. {@code padding} is a number, "same" or "valid"
 * (the last two for plain convolutions only); {@code outputPadding} for transposed ones only.
 * The layer matrix's convolutions are made from these; its name is the configuration's.
 */
public record ConvSpec(int dims, boolean transposed, long in, long out, long kernel, long stride, String padding,
                       long dilation, long groups, boolean bias, long outputPadding) {
    public static ConvSpec conv(int dims, long in, long out, long kernel) {
        return new ConvSpec(dims, false, in, out, kernel, 1, "0", 1, 1, true, 0);
    }

    public static ConvSpec transposed(int dims, long in, long out, long kernel) {
        return new ConvSpec(dims, true, in, out, kernel, 1, "0", 1, 1, true, 0);
    }

    public ConvSpec stride(long s) {
        return new ConvSpec(dims, transposed, in, out, kernel, s, padding, dilation, groups, bias, outputPadding);
    }

    public ConvSpec padding(String p) {
        return new ConvSpec(dims, transposed, in, out, kernel, stride, p, dilation, groups, bias, outputPadding);
    }

    public ConvSpec padding(long p) {
        return padding(Long.toString(p));
    }

    public ConvSpec dilation(long d) {
        return new ConvSpec(dims, transposed, in, out, kernel, stride, padding, d, groups, bias, outputPadding);
    }

    public ConvSpec groups(long g) {
        return new ConvSpec(dims, transposed, in, out, kernel, stride, padding, dilation, g, bias, outputPadding);
    }

    public ConvSpec noBias() {
        return new ConvSpec(dims, transposed, in, out, kernel, stride, padding, dilation, groups, false, outputPadding);
    }

    public ConvSpec outputPadding(long p) {
        return new ConvSpec(dims, transposed, in, out, kernel, stride, padding, dilation, groups, bias, p);
    }

    /** The input's spatial extent at which the (effective) kernel fits at least {@code extra} + 1 times. */
    public long minimalInput(long extra) {
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
    public Module build() {
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
    public static Tensor forward(Module m, Tensor x) {
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
    public Problem problem(long batch, long... size) {
        Module m = build();
        long[] shape = new long[2 + dims];
        shape[0] = batch;
        shape[1] = in;
        for (int d = 0; d < dims; d++) {
            shape[2 + d] = size[Math.min(d, size.length - 1)];
        }
        return Problem.mse(m, x -> forward(m, x), torch.randn(shape));
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
}
