package dev.psg4j.engine;

import dev.psg4j.BadInputException;
import dev.psg4j.GradAssertions;
import dev.psg4j.UnsupportedModelException;
import dev.psg4j.check.Batch;
import dev.psg4j.check.Loss;
import dev.psg4j.junit.PerSampleAssertions;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Reduction;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;

import org.bytedeco.pytorch.DropoutImpl;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The vmap engine through the Java API: function models, options, and where vmap cannot run. */
class VmapEngineTest {
    private static Map<String, Tensor> linearParams() {
        torch.manual_seed(3);
        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("fc.weight", torch.randn(3, 5).requires_grad_(true));
        params.put("fc.bias", torch.randn(3).requires_grad_(true));
        return params;
    }

    private static Tensor linear(Tensor x, Map<String, Tensor> p) {
        return torch.linear(x, p.get("fc.weight"), new TensorOptional(p.get("fc.bias")));
    }

    @Test
    void functionModelsReceiveTheEngineParameters() {
        Map<String, Tensor> params = linearParams();
        Tensor x = torch.randn(6, 4, 5);
        Tensor y = torch.randn(6, 4, 3);
        try (Model model = Models.function("java linear", params, (in, p) -> torch.tanh(linear(in.get(0), p)));
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(x).targets(y).loss(Loss.MSE).build();
             Batch batch = new Batch(List.of(x), List.of(y), 0, 0)) {
            PerSampleAssertions.assertCorrect(check.run(Engines.vmap()));
            for (Reduction r : Reduction.values()) {
                GradAssertions.assertClose(Engines.microbatch().perSampleGradients(model, batch, Loss.MSE, r),
                        Engines.vmap().chunkSize(4).perSampleGradients(model, batch, Loss.MSE, r), 1e-5, 1e-4,
                        "java linear " + r);
            }
        }
    }

    @Test
    void itemInAJavaForwardIsUnsupportedAndNamesTheOp() {
        Map<String, Tensor> params = linearParams();
        try (Model model = Models.function("thresholded", params, (in, p) -> {
                 Tensor h = linear(in.get(0), p);
                 return h.sum().item_double() > 0 ? h : h.neg();  // data-dependent control flow
             });
             // the branch on a whole-batch sum also mixes the batch; this test is about the engines
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(torch.randn(4, 5)).probes(false).build()) {
            UnsupportedModelException e = assertThrows(UnsupportedModelException.class, () -> check.run(Engines.vmap()));
            assertTrue(e.getMessage().contains("aten::item") && e.getMessage().contains("Engines.microbatch()"),
                    e::getMessage);
            assertInstanceOf(RuntimeException.class, e.getCause(), "the Java code's own exception is the cause");
            PerSampleAssertions.assertCorrect(check.run(Engines.microbatch()));
        }
    }

    @Test
    void inPlaceWriteIntoTheInputIsRefusedAndLeavesTheBatchAlone() {
        Map<String, Tensor> params = linearParams();
        Tensor x = torch.randn(4, 5);
        Tensor before = x.clone();
        try (Model model = Models.function("in-place", params, (in, p) -> linear(in.get(0).mul_(new Scalar(2.0)), p));
             Batch batch = Batch.of(x)) {
            UnsupportedModelException e = assertThrows(UnsupportedModelException.class,
                    () -> Engines.vmap().perSampleGradients(model, batch, Loss.L1, Reduction.SUM));
            assertTrue(e.getMessage().contains("aten::mul_"), e::getMessage);
            assertTrue(torch.equal(x, before), "the caller's batch is unchanged");
        }
    }

    @Test
    void randomOpsNeedARandomnessModeAndParametersAreRestored() {
        torch.manual_seed(5);
        SequentialImpl seq = new SequentialImpl();
        LinearImpl fc = new LinearImpl(5, 3);
        seq.push_back("0", fc);
        seq.push_back("1", new DropoutImpl(0.5));
        seq.train(true);
        long weightAddress = fc.weight().data_ptr().address();
        try (Model model = Models.module(seq); Batch batch = Batch.of(torch.randn(4, 5))) {
            UnsupportedModelException e = assertThrows(UnsupportedModelException.class,
                    () -> Engines.vmap().perSampleGradients(model, batch, Loss.L1, Reduction.SUM));
            assertTrue(e.getMessage().contains("randomness") && e.getMessage().contains("aten::"), e::getMessage);
            assertEquals(weightAddress, fc.weight().data_ptr().address(), "the Linear holds its own weight again");
            assertTrue(fc.weight().is_leaf() && fc.weight().requires_grad(), "a plain leaf parameter");
            for (Randomness mode : new Randomness[] {Randomness.DIFFERENT, Randomness.SAME}) {
                Map<String, Tensor> grads = Engines.vmap().randomness(mode)
                        .perSampleGradients(model, batch, Loss.L1, Reduction.SUM);
                assertEquals(4, grads.get("0.weight").size(0), mode::name);
            }
        }
    }

    @Test
    void aFailureTheEngineRecoveredFromIsNotReportedLater() {
        Map<String, Tensor> params = linearParams();
        AtomicInteger calls = new AtomicInteger();
        try (Model model = Models.function("flaky once", params, (in, p) -> {
                 if (calls.getAndIncrement() == 0) {
                     throw new IllegalStateException("first call fails");
                 }
                 return linear(in.get(0), p);
             });
             Batch batch = Batch.of(torch.randn(4, 5))) {
            // vmap retries with per-sample parameters after the first failure, and succeeds
            assertEquals(4, Engines.vmap().perSampleGradients(model, batch, Loss.L1, Reduction.SUM).get("fc.weight").size(0));
            try (Batch wrong = Batch.of(torch.randn(4, 7))) {
                // the next failure is the model's own, not the stale "first call fails"
                RuntimeException e = assertThrows(RuntimeException.class,
                        () -> Engines.microbatch().perSampleGradients(model, wrong, Loss.L1, Reduction.SUM));
                assertTrue(!e.getMessage().contains("first call fails"), e::getMessage);
            }
        }
    }

    @Test
    void options() {
        assertThrows(BadInputException.class, () -> Engines.vmap().chunkSize(-1));
        assertEquals(Randomness.SAME, Randomness.named("Same"));
        assertThrows(BadInputException.class, () -> Randomness.named("sometimes"));
        VmapEngine engine = Engines.vmap().chunkSize(8).randomness(Randomness.DIFFERENT);
        assertEquals("vmap(chunkSize=8, randomness=different)", engine.toString());
        assertEquals(0, Engines.vmap().chunkSize(), "whole batch by default");
        assertEquals(Randomness.ERROR, Engines.vmap().randomness(), "torch.func's default");
    }
}
