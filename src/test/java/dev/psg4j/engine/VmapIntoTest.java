package dev.psg4j.engine;

import dev.psg4j.BadInputException;
import dev.psg4j.bridge.Natives;
import dev.psg4j.check.Batch;
import dev.psg4j.check.Loss;
import dev.psg4j.check.Reduction;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;

import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.ReLUImpl;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link VmapEngine#perSampleGradientsInto}: the caller's buffers, reused, and refused when wrong. */
class VmapIntoTest {
    /** Linear-ReLU-Linear: the engine's per-layer rules take it. */
    private static SequentialImpl mlp() {
        torch.manual_seed(11);
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("0", new LinearImpl(5, 4));
        seq.push_back("1", new ReLUImpl());
        seq.push_back("2", new LinearImpl(4, 3));
        seq.eval();
        return seq;
    }

    /** A Java forward: functorch's route. */
    private static Model javaLinear() {
        torch.manual_seed(12);
        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("fc.weight", torch.randn(3, 5).requires_grad_(true));
        params.put("fc.bias", torch.randn(3).requires_grad_(true));
        return Models.function("java linear", params, (in, p) -> torch.tanh(
                torch.linear(in.get(0), p.get("fc.weight"), new TensorOptional(p.get("fc.bias")))));
    }

    /** Buffers shaped like {@code like}'s tensors, filled with a value no gradient has. */
    private static Map<String, Tensor> buffersLike(Map<String, Tensor> like) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        like.forEach((name, t) -> out.put(name, t.clone().contiguous().fill_(new Scalar(123.0))));
        return out;
    }

    @Test
    void valuesEqualTheAllocatingCallAndTheBuffersAreReused() {
        SequentialImpl seq = mlp();
        try (Model rules = Models.module(seq); Model functorch = javaLinear();
             Batch batch = Batch.of(torch.randn(6, 5))) {
            for (Model model : List.of(rules, functorch)) {
                for (Reduction r : Reduction.values()) {
                    Map<String, Tensor> expected = Engines.vmap().perSampleGradients(model, batch, Loss.L1, r);
                    Map<String, Tensor> out = buffersLike(expected);
                    Map<String, Long> addresses = new LinkedHashMap<>();
                    out.forEach((name, t) -> addresses.put(name, t.data_ptr().address()));
                    VmapEngine engine = Engines.vmap();
                    engine.perSampleGradientsInto(model, batch, Loss.L1, r, out);
                    engine.chunkSize(4).perSampleGradientsInto(model, batch, Loss.L1, r, out);  // again, in chunks
                    for (String name : expected.keySet()) {
                        assertTrue(torch.equal(expected.get(name), out.get(name)), model + " " + r + ": " + name);
                        assertEquals(addresses.get(name), out.get(name).data_ptr().address(), "written in place");
                    }
                    Natives.closeAll(expected);
                    Natives.closeAll(out);
                }
            }
        }
    }

    private static BadInputException refused(Model model, Batch batch, Consumer<Map<String, Tensor>> spoil) {
        Map<String, Tensor> out = buffersLike(Engines.vmap().perSampleGradients(model, batch, Loss.L1, Reduction.SUM));
        spoil.accept(out);
        Tensor untouched = out.get("0.weight") == null ? null : out.get("0.weight").clone();
        BadInputException e = assertThrows(BadInputException.class,
                () -> Engines.vmap().perSampleGradientsInto(model, batch, Loss.L1, Reduction.SUM, out));
        if (untouched != null && !out.get("0.weight").isNull()) {
            assertTrue(torch.equal(untouched, out.get("0.weight")), "nothing written before the refusal");
        }
        return e;
    }

    @Test
    void wrongBuffersAreBadInputNamingTheParameter() {
        SequentialImpl seq = mlp();
        try (Model model = Models.module(seq); Batch batch = Batch.of(torch.randn(6, 5))) {
            String shape = refused(model, batch, out -> out.put("2.weight", torch.zeros(7, 3, 4))).getMessage();
            assertTrue(shape.contains("'2.weight'") && shape.contains("shape"), shape);
            String dtype = refused(model, batch, out -> out.put("0.bias", out.get("0.bias").to(torch.kDouble())))
                    .getMessage();
            assertTrue(dtype.contains("'0.bias'") && dtype.contains("dtype"), dtype);
            String missing = refused(model, batch, out -> out.remove("2.bias")).getMessage();
            assertTrue(missing.contains("'2.bias'"), missing);
            String unknown = refused(model, batch, out -> out.put("3.weight", torch.zeros(6, 1))).getMessage();
            assertTrue(unknown.contains("'3.weight'") && unknown.contains("no trainable parameter"), unknown);
            String layout = refused(model, batch, out -> out.put("2.weight", torch.zeros(6, 4, 3).transpose(1, 2)))
                    .getMessage();
            assertTrue(layout.contains("'2.weight'") && layout.contains("contiguous"), layout);
            String closed = refused(model, batch, out -> out.get("2.bias").close()).getMessage();
            assertTrue(closed.contains("'2.bias'"), closed);
            assertThrows(BadInputException.class,
                    () -> Engines.vmap().perSampleGradientsInto(model, batch, Loss.L1, Reduction.SUM, null));
        }
    }
}
