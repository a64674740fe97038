package dev.psg4j.model;

import dev.psg4j.BadInputException;
import dev.psg4j.check.Batch;
import dev.psg4j.check.Loss;
import dev.psg4j.check.Reduction;
import dev.psg4j.engine.Engines;

import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.Conv2dImpl;
import org.bytedeco.pytorch.EmbeddingImpl;
import org.bytedeco.pytorch.FlattenImpl;
import org.bytedeco.pytorch.GELUImpl;
import org.bytedeco.pytorch.LayerNormImpl;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.MaxPool2dImpl;
import org.bytedeco.pytorch.LongVector;
import org.bytedeco.pytorch.ReLUImpl;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * C++-frontend Sequentials built in Java (the DESIGN §7 suite, small), run natively: for a
 * batch-independent model the per-sample gradients must add up to the batch gradient (sum
 * reduction), and average to it (mean).
 */
class FrontendModuleTest {
    static SequentialImpl suite(String name) {
        torch.manual_seed(7);
        SequentialImpl seq = new SequentialImpl();
        switch (name) {
            case "mlp" -> {
                seq.push_back("0", new LinearImpl(20, 16));
                seq.push_back("1", new ReLUImpl());
                seq.push_back("2", new LinearImpl(16, 3));
            }
            case "cnn" -> {
                seq.push_back("0", new Conv2dImpl(1, 4, new LongPointer(3L, 3L)));
                seq.push_back("1", new ReLUImpl());
                seq.push_back("2", Models.forSequential(new MaxPool2dImpl(new LongPointer(2L, 2L))));
                seq.push_back("3", new FlattenImpl());
                seq.push_back("4", new LinearImpl(4 * 3 * 3, 3));
            }
            case "seq" -> {
                seq.push_back("0", new LinearImpl(6, 8));
                seq.push_back("1", new LayerNormImpl(new LongVector(new long[] {8})));
                seq.push_back("2", new GELUImpl());
                seq.push_back("3", new LinearImpl(8, 6));
            }
            case "emb" -> {
                seq.push_back("0", new EmbeddingImpl(30, 5));
                seq.push_back("1", new FlattenImpl());
                seq.push_back("2", new LinearImpl(4 * 5, 3));
            }
            default -> throw new IllegalArgumentException(name);
        }
        return seq;
    }

    static Tensor input(String name, long batch) {
        return switch (name) {
            case "mlp" -> torch.rand(batch, 20);
            case "cnn" -> torch.rand(batch, 1, 8, 8);
            case "seq" -> torch.rand(batch, 5, 6);
            case "emb" -> torch.randint(30, new long[] {batch, 4});
            default -> throw new IllegalArgumentException(name);
        };
    }

    @ParameterizedTest
    @ValueSource(strings = {"mlp", "cnn", "seq", "emb"})
    void perSampleGradientsAddUpToTheBatchGradient(String name) {
        SequentialImpl seq = suite(name);
        long b = 6;
        Tensor x = input(name, b);
        try (Model model = Models.module(seq); Batch batch = Batch.of(x)) {
            List<String> names = List.copyOf(model.trainableParameters().keySet());
            assertEquals("0.weight", names.get(0));
            for (Reduction reduction : Reduction.values()) {
                Map<String, Tensor> perSample = Engines.microbatch().perSampleGradients(model, batch, Loss.L1, reduction);
                Tensor loss = Loss.L1.apply(seq.forward(x), List.of(), reduction, b);
                Tensor[] batchGrads = torch.grad(new TensorVector(loss),
                        new TensorVector(model.trainableParameters().values().toArray(Tensor[]::new))).get();
                for (int k = 0; k < names.size(); k++) {
                    Tensor summed = perSample.get(names.get(k)).sum(0);
                    if (reduction == Reduction.MEAN) {
                        summed = summed.div(new Scalar((double) b));
                    }
                    Tensor expected = batchGrads[k];
                    String what = name + " " + reduction + " " + names.get(k);
                    Tensor actual = summed;
                    assertTrue(torch.allclose(actual, expected, 1e-4, 1e-5, false),
                            () -> what + ": max diff " + actual.sub(expected).abs().max().item_double());
                }
            }
        }
    }

    @Test
    void aModuleWithoutANativeForwardIsNamed() {
        org.bytedeco.pytorch.Module plain = new org.bytedeco.pytorch.Module("Custom");
        try (Model model = Models.module(plain); Batch batch = Batch.of(torch.ones(2, 3))) {
            BadInputException e = assertThrows(BadInputException.class,
                    () -> Engines.microbatch().perSampleGradients(model, batch, Loss.L1, Reduction.SUM));
            assertTrue(e.getMessage().contains("Custom") && e.getMessage().contains("Models.function"), e::getMessage);
        }
    }
}
