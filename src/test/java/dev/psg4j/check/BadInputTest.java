package dev.psg4j.check;

import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.FailureKind;

import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Unusual input that is answered without an exception of psg4j's (the exceptions are in
 * {@link ApiBadInputCorpusTest}): a failing report, the caller's own exception, or a check that
 * simply works.
 */
class BadInputTest {
    private static Model linearModel() {
        torch.manual_seed(1);
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("fc", new LinearImpl(4, 2));
        return Models.module(seq);
    }

    @Test
    void javaForwardThatThrowsIsRethrownAsItself() {
        Tensor w = torch.ones(2, 4).requires_grad_(true);
        IllegalStateException boom = new IllegalStateException("boom in forward");
        try (Model m = Models.function("throwing", Map.of("w", w), (in, p) -> {
                 throw boom;
             });
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(torch.ones(3, 4)).build()) {
            assertSame(boom, assertThrows(IllegalStateException.class, () -> check.run(Engines.microbatch())));
        }
    }

    @Test
    void nonFiniteModelGradientIsAFailingReport() {
        Tensor w = torch.ones(2, 4).requires_grad_(true);
        // sqrt at 0 has an infinite derivative: the reference itself is not finite.
        try (Model m = Models.function("sqrt", Map.of("w", w), (in, p) -> torch.sqrt(torch.matmul(in.get(0), p.get("w").t())));
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(torch.zeros(3, 4)).reduction(Reduction.SUM)
                     .build()) {
            CheckReport report = check.run(Engines.microbatch());
            assertFalse(report.passed());
            assertTrue(report.failures().stream().allMatch(f -> f.kind() == FailureKind.NON_FINITE));
            assertTrue(report.failures().get(0).message().contains("reference gradient itself"));
        }
    }

    @Test
    void batchOfOne() {
        try (Model m = linearModel();
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(torch.ones(1, 4)).build()) {
            CheckReport report = check.run(Engines.microbatch());
            assertTrue(report.passed());
            assertEquals(1, report.batchSize());
            assertEquals(List.of(1L, 2L, 4L), report.reductions().get(0).params().get(0).shape());
        }
    }

    /** The built check holds its own references: closing the caller's tensors changes nothing. */
    @Test
    void closingTheCallersTensorsAfterBuildChangesNothing() {
        Tensor x = torch.randn(3, 4);
        Tensor y = torch.randn(3, 2);
        try (Model m = linearModel();
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(x).targets(y).loss(Loss.MSE).build()) {
            x.close();
            y.close();
            assertEquals("cpu", check.batch().device());
            CheckReport vmap = check.run(Engines.vmap());
            assertTrue(vmap.passed(), vmap::summary);
            assertTrue(check.run(Engines.microbatch()).passed());
            assertEquals(3, check.batch().inputs().get(0).size(0));
        }
    }

    /** A class index of ignore_index (-100) leaves the sample out of the loss: a zero gradient, not an error. */
    @Test
    void ignoreIndexIsAValidClassIndex() {
        try (Model m = linearModel();
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(torch.randn(3, 4))
                     .targets(torch.tensor(0L, -100L, 1L)).loss(Loss.CROSS_ENTROPY).reduction(Reduction.SUM).build()) {
            CheckReport report = check.run(Engines.vmap());
            assertTrue(report.passed(), report::summary);
        }
    }
}
