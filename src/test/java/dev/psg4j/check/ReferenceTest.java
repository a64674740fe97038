package dev.psg4j.check;

import dev.psg4j.junit.PerSampleAssertions;
import dev.psg4j.Fixtures;
import dev.psg4j.GradAssertions;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;

import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The microbatch reference against independent computations of the same gradients. */
class ReferenceTest {
    static List<String> fixtures() {
        return Fixtures.names();
    }

    static void assertClose(Map<String, Tensor> expected, Map<String, Tensor> actual, double tol) {
        GradAssertions.assertClose(expected, actual, tol, tol, "reference");
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void microbatchEqualsTorchFuncOnEveryFixture(String fixture) {
        for (Reduction reduction : Reduction.values()) {
            try (Model model = Models.torchScript(Fixtures.file(fixture, "model.pt"));
                 PerSampleCheck check = FixtureMatrixTest.checkOf(fixture, model).build()) {
                Map<String, Tensor> ours = Engines.microbatch().perSampleGradients(model, check.batch(), check.loss(),
                        reduction);
                Map<String, Tensor> func = Fixtures.grads(fixture,
                        "grads_func_" + reduction.name().toLowerCase(Locale.ROOT) + ".pt");
                assertClose(func, ours, 1e-6);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Reduction.class)
    void linearReferenceEqualsClosedForm(Reduction reduction) {
        torch.manual_seed(3);
        SequentialImpl seq = new SequentialImpl();
        LinearImpl linear = new LinearImpl(5, 3);
        seq.push_back("fc", linear);
        Tensor x = torch.rand(7, 5).sub(new org.bytedeco.pytorch.Scalar(0.5));
        try (Model model = Models.module(seq);
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(x).build()) {
            Map<String, Tensor> grads = Engines.microbatch().perSampleGradients(model, check.batch(), Loss.L1,
                    reduction);
            // l1 against zeros: dL/dout = sign(out) (divided by the 3 outputs for mean).
            Tensor backprop = torch.sign(linear.forward(x).detach());
            if (reduction == Reduction.MEAN) {
                backprop = backprop.div(new org.bytedeco.pytorch.Scalar(3.0));
            }
            Map<String, Tensor> closedForm = new LinkedHashMap<>();
            closedForm.put("fc.weight", backprop.unsqueeze(2).mul(x.unsqueeze(1)));
            closedForm.put("fc.bias", backprop);
            assertClose(closedForm, grads, 1e-6);
        }
    }

    @Test
    void javaFunctionModelAndCustomLossMatchBuiltIns() {
        torch.manual_seed(4);
        SequentialImpl seq = new SequentialImpl();
        LinearImpl linear = new LinearImpl(4, 2);
        seq.push_back("fc", linear);
        Tensor x = torch.rand(6, 4);
        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("fc.weight", linear.weight());
        params.put("fc.bias", linear.bias());
        Loss customL1 = Loss.custom("my-l1", (out, targets, reduction) ->
                torch.l1_loss(out, torch.zeros_like(out), reduction == Reduction.SUM ? 2 : 1));
        try (Model native_ = Models.module(seq);
             Model function = Models.function("java linear", params, (in, p) -> torch.linear(in.get(0), p.get(
                     "fc.weight"), new org.bytedeco.pytorch.TensorOptional(p.get("fc.bias"))));
             PerSampleCheck check = PerSampleCheck.builder().model(native_).inputs(x).threads(2).build()) {
            for (Reduction r : Reduction.values()) {
                Map<String, Tensor> expected = Engines.microbatch().perSampleGradients(native_, check.batch(), Loss.L1, r);
                assertClose(expected, Engines.microbatch().perSampleGradients(function, check.batch(), Loss.L1, r), 1e-6);
                assertClose(expected, Engines.microbatch().perSampleGradients(native_, check.batch(), customL1, r), 1e-6);
            }
        } finally {
            torch.set_num_threads(1);
        }
    }

    @Test
    void manyJavaModelsAndLossesCanLiveAtOnce() {
        List<Model> models = new java.util.ArrayList<>();
        List<Loss> losses = new java.util.ArrayList<>();
        try {
            for (int k = 0; k < 40; k++) {
                Tensor w = torch.ones(2, 3).requires_grad_(true);
                models.add(Models.function("m" + k, Map.of("w", w), (in, p) -> torch.matmul(in.get(0), p.get("w").t())));
                losses.add(Loss.custom("l" + k, (out, t, r) -> out.sum()));
            }
            try (PerSampleCheck check = PerSampleCheck.builder().model(models.get(39)).inputs(torch.ones(4, 3))
                    .loss(losses.get(39)).build()) {
                PerSampleAssertions.assertCorrect(check.run(Engines.microbatch()));
            }
        } finally {
            models.forEach(Model::close);
            losses.forEach(Loss::close);
        }
    }
}
