package dev.psg4j.check;

import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.DiagnosisKind;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** A reusable check probes once per input layout, and again every N runs when asked to. */
class ProbeCacheTest {
    private final AtomicInteger probes = new AtomicInteger();
    private final List<Diagnosis> finding = List.of(new Diagnosis(DiagnosisKind.BATCH_MIXING, "0", List.of(0, 1), "mixes"));
    private final Function<Batch, List<Diagnosis>> probe = b -> {
        probes.incrementAndGet();
        return finding;
    };

    private static Batch batch(long... shape) {
        Tensor x = torch.randn(shape);
        return new Batch(List.of(x), List.of(), 0, 0);
    }

    @Test
    void sameLayoutProbesOnceAndKeepsTheFinding() {
        ProbeCache cache = new ProbeCache(0);
        for (int run = 0; run < 5; run++) {
            try (Batch b = batch(8, 3)) {
                assertEquals(finding, cache.diagnoses(b, probe));
            }
        }
        assertEquals(1, probes.get());
    }

    @Test
    void aNewShapeOrDtypeProbesAgain() {
        ProbeCache cache = new ProbeCache(0);
        try (Batch a = batch(8, 3); Batch b = batch(16, 3); Batch c = batch(16, 3)) {
            cache.diagnoses(a, probe);
            cache.diagnoses(b, probe);
            cache.diagnoses(c, probe);
        }
        assertEquals(2, probes.get());
        try (Batch d = new Batch(List.of(torch.randn(16, 3).to(torch.ScalarType.Double)), List.of(), 0, 0)) {
            cache.diagnoses(d, probe);
        }
        assertEquals(3, probes.get());
    }

    @Test
    void probeEveryNRuns() {
        ProbeCache cache = new ProbeCache(3);
        for (int run = 0; run < 7; run++) {
            try (Batch b = batch(4, 2)) {
                assertEquals(finding, cache.diagnoses(b, probe));
            }
        }
        assertEquals(3, probes.get(), "runs 1, 4 and 7 probe");
    }
}
