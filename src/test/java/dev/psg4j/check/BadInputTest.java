package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.Fixtures;
import dev.psg4j.ModelExecutionException;
import dev.psg4j.engine.Engines;
import dev.psg4j.engine.TensorMaps;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.FailureKind;

import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad input is a typed exception with a helpful message, or a failing report: never a crash. */
class BadInputTest {
    private static Model linearModel() {
        torch.manual_seed(1);
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("fc", new LinearImpl(4, 2));
        return Models.module(seq);
    }

    private static BadInputException badInput(Runnable r, String expectedFragment) {
        BadInputException e = assertThrows(BadInputException.class, r::run);
        assertTrue(e.getMessage().contains(expectedFragment), e::getMessage);
        return e;
    }

    @Test
    void emptyBatch() {
        try (Model m = linearModel()) {
            badInput(() -> PerSampleCheck.builder().model(m).inputs(torch.zeros(0, 4)).build(), "empty");
        }
    }

    @Test
    void batchDimOutOfRange() {
        try (Model m = linearModel()) {
            badInput(() -> PerSampleCheck.builder().model(m).inputs(torch.zeros(3, 4)).batchDim(2).build(),
                    "batch dimension 2 is out of range");
        }
    }

    @Test
    void inputsWithDifferentBatchSizes() {
        try (Model m = linearModel()) {
            badInput(() -> PerSampleCheck.builder().model(m).inputs(torch.zeros(3, 4), torch.zeros(5, 4)).build(),
                    "batch size 5");
            badInput(() -> PerSampleCheck.builder().model(m).inputs(torch.zeros(3, 4)).targets(torch.zeros(4, 2))
                    .build(), "target 0 has batch size 4");
        }
    }

    @Test
    void noInputs() {
        try (Model m = linearModel()) {
            badInput(() -> PerSampleCheck.builder().model(m).build(), "no inputs");
        }
    }

    @Test
    void wrongInputDtypeIsAModelExecutionError() {
        try (Model m = linearModel();
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(torch.ones(3, 4).to(torch.kDouble()))
                     .build()) {
            ModelExecutionException e = assertThrows(ModelExecutionException.class, () -> check.run(Engines.microbatch()));
            assertTrue(e.getMessage().contains("Double and Float"), e::getMessage);
        }
    }

    @Test
    void integerCandidateIsBadInput() {
        try (Model m = linearModel();
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(torch.ones(3, 4)).reduction(Reduction.SUM)
                     .build()) {
            Map<String, Tensor> grads = Engines.microbatch().perSampleGradients(m, check.batch(), Loss.L1, Reduction.SUM);
            grads.put("fc.weight", grads.get("fc.weight").to(torch.kLong()));
            badInput(() -> check.run(Engines.precomputed("ints", Reduction.SUM, grads)), "floating-point");
        }
    }

    @Test
    void crossEntropyWithoutTargets() {
        try (Model m = linearModel();
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(torch.ones(3, 4))
                     .loss(Loss.CROSS_ENTROPY).build()) {
            badInput(() -> check.run(Engines.microbatch()), "needs exactly one target");
        }
    }

    @Test
    void filesThatAreMissingCorruptOrNotTorchScript() {
        badInput(() -> Models.torchScript(Path.of("no/such/model.pt")), "does not exist");
        badInput(() -> Models.torchScript(Fixtures.root().resolve("corrupt.pt")), "cannot load");
        badInput(() -> Models.torchScript(Fixtures.root().resolve("tensor_only.pt")), "not torch.save");
        badInput(() -> TensorMaps.load(Path.of("no/such/x.pt")), "cannot open");
        badInput(() -> TensorMaps.load(Fixtures.root().resolve("corrupt.pt")), "cannot read");
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
    void customLossMustBeScalar() {
        Loss notScalar = Loss.custom("vector", (out, targets, r) -> out.abs());
        try (Model m = linearModel();
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(torch.ones(3, 4)).loss(notScalar).build()) {
            ModelExecutionException e = assertThrows(ModelExecutionException.class, () -> check.run(Engines.microbatch()));
            assertTrue(e.getMessage().contains("scalar"), e::getMessage);
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
    void candidateForOtherReductionIsBadInput() {
        try (Model m = linearModel();
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(torch.ones(3, 4)).build()) {
            Map<String, Tensor> grads = new LinkedHashMap<>(
                    Engines.microbatch().perSampleGradients(m, check.batch(), Loss.L1, Reduction.SUM));
            badInput(() -> check.run(Engines.precomputed("sum-only", Reduction.SUM, grads)), "reduction sum only");
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

    @Test
    void freedOrUndefinedTensorsAreRefusedNotDereferenced() {
        Tensor freed = torch.ones(3, 4);
        freed.close();
        try (Model m = linearModel()) {
            badInput(() -> PerSampleCheck.builder().model(m).inputs(freed).build(), "input 0 is null or was freed");
            badInput(() -> PerSampleCheck.builder().model(m).inputs(new Tensor()).build(), "undefined tensor");
        }
        badInput(() -> Models.function("f", Map.of("w", new Tensor()), (in, p) -> in.get(0)), "undefined tensor");
        badInput(() -> Models.function("f", Map.of("w", freed), (in, p) -> in.get(0)), "parameter 0 is null or was freed");
    }
}
