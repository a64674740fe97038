package dev.psg4j.conform;

import org.bytedeco.pytorch.GRUImpl;
import org.bytedeco.pytorch.GRUOptions;
import org.bytedeco.pytorch.LSTMImpl;
import org.bytedeco.pytorch.LSTMOptions;
import org.bytedeco.pytorch.RNNImpl;
import org.bytedeco.pytorch.RNNOptions;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * An RNN, LSTM or GRU of the layer matrix ({@code kind} "RNN", "RNN_relu", "LSTM" or "GRU"), fed
 * batch-first or time-first data.
 */
public record RecurrentSpec(String kind, long input, long hidden, long layers, boolean batchFirst, boolean bidirectional,
                            boolean bias) {
    @Override
    public String toString() {
        return kind + "(" + input + "->" + hidden + ", layers=" + layers + ", batch_first=" + batchFirst
                + ", bidirectional=" + bidirectional + (bias ? "" : ", bias=false") + ")";
    }

    /** A batch of {@code batch} sequences of length {@code length}: time-first (batch dim 1) unless batch_first. */
    public Problem problem(long batch, long length) {
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
