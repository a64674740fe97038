package dev.psg4j.check;

import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.models.LoRA;
import dev.psg4j.report.CheckReport;

import org.bytedeco.pytorch.BatchNorm1dImpl;
import org.bytedeco.pytorch.BatchNormOptions;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.ReLUImpl;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Models whose forward reads frozen parameters or buffers run in double where a check needs double
 * (the sketch's projections, the rounding yardstick): everything the forward reads is cast, not only
 * the trainable parameters, and the caller's tensors stay as they were.
 */
class FrozenStateInDoubleTest {
    private static final long B = 256;

    private static void assertSketchAndYardstickInDouble(Supplier<Model> make, Tensor x, List<Tensor> frozen) {
        List<Tensor> before = frozen.stream().map(Tensor::clone).toList();
        try (Model model = make.get();
             PerSampleCheck sketch = PerSampleCheck.builder().model(model).inputs(x).mode(CheckMode.SKETCH).seed(3)
                     .build();
             PerSampleCheck exact = PerSampleCheck.builder().model(model).inputs(x).probes(false).build()) {
            CheckReport sketched = sketch.run(Engines.vmap());
            assertTrue(sketched.passed(), sketched::table);
            assertEquals("double", sketched.sketch().referencePrecision());
            CheckReport checked = exact.run(Engines.vmap());
            assertTrue(checked.passed(), checked::table);
            assertEquals("double", checked.rounding().measuredAgainst());
            assertEquals("float", checked.referencePrecision());
            // A wrong candidate still fails in the sketch: one sample of one adapter doubled.
            CheckReport wrong = sketch.run(new GradSampler() {
                @Override
                public String name() {
                    return "one sample doubled";
                }

                @Override
                public Map<String, Tensor> perSampleGradients(Model m, Batch batch, Loss loss, Reduction reduction) {
                    Map<String, Tensor> grads = Engines.vmap().perSampleGradients(m, batch, loss, reduction);
                    Tensor first = grads.values().iterator().next();
                    first.select(0, 17).mul_(new Scalar(2.0));
                    return grads;
                }
            });
            assertFalse(wrong.passed());
            assertEquals(List.of(17), wrong.reductions().get(0).params().get(0).badSamples(), wrong::table);
        }
        for (int k = 0; k < frozen.size(); k++) {
            assertEquals(torch.ScalarType.Float, frozen.get(k).scalar_type().intern(), "the caller's tensor's dtype");
            assertTrue(torch.equal(before.get(k), frozen.get(k)), "the caller's tensor was written");
        }
    }

    /** A frozen Linear plus two trainable low-rank adapters, as a Java function model. */
    @Test
    void aLoraFunctionModelRunsInDouble() {
        Map<String, Tensor> p = LoRA.parameters(1);
        assertSketchAndYardstickInDouble(() -> LoRA.functionModel(p), LoRA.inputs(B, 2),
                List.of(p.get("weight"), p.get("bias")));
    }

    /** The same as a C++-frontend layer of a registered type, its frozen weight and bias registered parameters. */
    @Test
    void aLoraFrontendLayerRunsInDouble() {
        Map<String, Tensor> p = LoRA.parameters(1);
        SequentialImpl seq = LoRA.sequential(p);
        assertSketchAndYardstickInDouble(() -> Models.module(seq), LoRA.inputs(B, 2),
                List.of(p.get("weight"), p.get("bias")));
    }

    /** BatchNorm in eval mode reads its running statistics, buffers: cast with the rest. */
    @Test
    void buffersRunInDouble() {
        torch.manual_seed(4);
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("0", new LinearImpl(12, 16));
        BatchNorm1dImpl norm = Models.forSequential(new BatchNorm1dImpl(new BatchNormOptions(16)));
        seq.push_back("1", norm);
        seq.push_back("2", new ReLUImpl());
        seq.push_back("3", new LinearImpl(16, 4));
        norm.running_mean().copy_(torch.randn(16));
        norm.running_var().copy_(torch.rand(16).add(new Scalar(0.5)));
        seq.eval();
        assertSketchAndYardstickInDouble(() -> Models.module(seq), torch.randn(B, 12),
                List.of(norm.running_mean(), norm.running_var()));
    }
}
