package dev.psg4j.engine;

import dev.psg4j.BadInputException;
import dev.psg4j.UnsupportedModelException;
import dev.psg4j.check.Batch;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.junit.PerSampleAssertions;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Reduction;
import dev.psg4j.conform.Configuration;
import dev.psg4j.conform.LayerMatrix;
import dev.psg4j.conform.Problem;
import dev.psg4j.conform.RecurrentSpec;
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
 * configuration: psg4j's layer matrix (dev.psg4j.conform.LayerMatrix, after Opacus's grad-sample
 * tests, opacus/tests/grad_samples, and what psg4j conform runs). For every configuration the
 * vmap engine passes the check for both reductions and equals the microbatch engine within
 * 1e-5 abs / 1e-4 rel. Plus chunking, the layers the vmap engine refuses, and random ops.
 */
class FrontendVmapMatrixTest {
    private static final long B = 3;

    /** The layer matrix (dev.psg4j.conform.LayerMatrix, shared with psg4j conform), each at B = 3 (or its fixed B). */
    static Stream<Configuration> cases() {
        return LayerMatrix.configurations().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void vmapPassesTheCheckAndEqualsMicrobatch(Configuration c) {
        torch.manual_seed(c.name().hashCode());
        VmapTesting.assertVmapCorrect(c.name(), c.problem(B), Engines.vmap());
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Reduction.class)
    void chunksOfTwoOnABatchOfFive(Reduction reduction) {
        torch.manual_seed(11);
        SequentialImpl seq = LayerMatrix.cnn();
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
        SequentialImpl seq = LayerMatrix.cnn();
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
