package dev.psg4j.check;

import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.DiagnosisKind;

import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The model keeps what its probes found for each batch signature while its parameters stay as
 * they were: a new check of the same model probes once, a parameter update or a new signature
 * probes again, and a finding is replayed as it was found.
 */
class ProbeMemoTest {
    private final AtomicInteger probes = new AtomicInteger();
    private final List<Diagnosis> finding = List.of(new Diagnosis(DiagnosisKind.BATCH_MIXING, "0", List.of(0, 1), "mixes"));
    private final Supplier<List<Diagnosis>> probe = () -> {
        probes.incrementAndGet();
        return finding;
    };

    private static Model linear() {
        torch.manual_seed(3);
        return Models.module(new LinearImpl(4, 2));
    }

    private List<Diagnosis> diagnose(Model model, long batchSize) {
        try (Batch b = new Batch(List.of(torch.randn(batchSize, 4)), List.of(), 0, 0)) {
            return ProbeMemo.diagnoses(model, b, Probes.DEFAULT_PROBE_SAMPLES, probe);
        }
    }

    @Test
    void theSameParametersAndSignatureProbeOnceAcrossChecks() {
        try (Model model = linear()) {
            for (int check = 0; check < 4; check++) {
                assertEquals(finding, diagnose(model, 8), "a finding is replayed as found");
            }
            assertEquals(1, probes.get());
            diagnose(model, 16);
            assertEquals(2, probes.get(), "a new batch signature probes");
            diagnose(model, 8);
            assertEquals(2, probes.get(), "the model keeps several signatures");
        }
    }

    @Test
    void anInPlaceParameterUpdateProbesAgain() {
        try (Model model = linear()) {
            diagnose(model, 8);
            Map<String, Tensor> parameters = model.trainableParameters();
            try (NoGradGuard noGrad = new NoGradGuard()) {
                parameters.get("weight").add_(new Scalar(0.5));  // an optimizer step
            } finally {
                parameters.values().forEach(Tensor::close);
            }
            diagnose(model, 8);
            diagnose(model, 8);
            assertEquals(2, probes.get());
        }
    }

    @Test
    void eachModelHasItsOwnMemoAndForgetProbesAgain() {
        try (Model first = linear(); Model second = linear()) {
            diagnose(first, 8);
            diagnose(second, 8);
            assertEquals(2, probes.get(), "an equal model is another model");
            Probes.forget(first);
            diagnose(first, 8);
            diagnose(second, 8);
            assertEquals(3, probes.get());
        }
    }

    @Test
    void aNewCheckOfAProbedModelGivesTheSameVerdict() {
        try (Model model = linear(); Tensor x = torch.randn(8, 4)) {
            Probes.forget(model);
            for (int k = 0; k < 2; k++) {
                try (PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(x).loss(Loss.SUM).build()) {
                    assertEquals(true, check.run(dev.psg4j.engine.Engines.vmap()).passed());
                }
            }
        }
    }
}
