package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.bench.Suite;
import dev.psg4j.engine.Engines;
import dev.psg4j.report.CheckReport;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One check, built once, run on each step's batch: the same reports as a check built for that batch. */
class ReusableCheckTest {
    @Test
    void eachStepGetsTheReportOfACheckBuiltForItsBatch() {
        try (Suite suite = Suite.build("seq", 8);
             PerSampleCheck reused = PerSampleCheck.builder().model(suite.model()).inputs(suite.input()).build()) {
            for (long b : new long[] {8, 8, 5}) {
                Tensor x = torch.randn(b, 16, 64);
                CheckReport stepReport = reused.run(Engines.vmap(), List.of(x), List.of());
                try (PerSampleCheck fresh = PerSampleCheck.builder().model(suite.model()).inputs(x).build()) {
                    assertEquals(fresh.run(Engines.vmap()).toJson(), stepReport.toJson());
                }
                assertEquals(b, stepReport.batchSize());
            }
        }
    }

    @Test
    void aBrokenSamplerIsCaughtOnALaterStep() {
        try (Suite suite = Suite.build("mlp", 16);
             PerSampleCheck check = PerSampleCheck.builder().model(suite.model()).inputs(suite.input())
                     .mode(CheckMode.SKETCH).build()) {
            assertTrue(check.run(Engines.vmap(), List.of(torch.randn(16, 784)), List.of()).passed());
            GradSampler halved = new GradSampler() {
                @Override
                public String name() {
                    return "halved";
                }

                @Override
                public java.util.Map<String, Tensor> perSampleGradients(dev.psg4j.model.Model model, Batch batch,
                                                                        Loss loss, Reduction reduction) {
                    java.util.Map<String, Tensor> grads = Engines.vmap().perSampleGradients(model, batch, loss, reduction);
                    grads.get("2.bias").select(0, 3).mul_(new org.bytedeco.pytorch.Scalar(0.5));
                    return grads;
                }
            };
            CheckReport report = check.run(halved, List.of(torch.randn(16, 784)), List.of());
            assertFalse(report.passed());
            assertEquals(List.of(3), report.reductions().get(0).params().stream()
                    .filter(p -> p.name().equals("2.bias")).findFirst().orElseThrow().badSamples());
        }
    }

    @Test
    void aStepWithoutInputsIsRefused() {
        try (Suite suite = Suite.build("mlp", 4);
             PerSampleCheck check = PerSampleCheck.builder().model(suite.model()).inputs(suite.input()).build()) {
            assertThrows(BadInputException.class, () -> check.run(Engines.vmap(), List.of(), List.of()));
            assertThrows(BadInputException.class, () -> check.run(Engines.vmap(), null, List.of()));
        }
    }
}
