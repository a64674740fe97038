package dev.psg4j.bench;

import dev.psg4j.BadInputException;
import dev.psg4j.check.Batch;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Probes;
import dev.psg4j.engine.Engines;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.ProbeReport;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The suite models built in Java: DESIGN §7 sizes, and they survive the garbage collector. */
class SuiteTest {
    @ParameterizedTest
    @CsvSource({"mlp, 203530, 10", "cnn, 18378, 10", "seq, 16832, 64", "emb, 69130, 10"})
    void fullSizeModelsRunAndTheVmapEngineMatchesTheReference(String name, long parameters, long outputs)
            throws InterruptedException {
        try (Suite suite = Suite.build(name, 3)) {
            Map<String, Tensor> params = suite.model().trainableParameters();
            assertEquals(parameters, params.values().stream().mapToLong(Tensor::numel).sum(), params::toString);
            assertEquals(3, suite.batchSize());
            for (int k = 0; k < 3; k++) { // the Java wrappers of the layers are garbage by now: the model must not care
                System.gc();
                Thread.sleep(20);
            }
            Tensor out = suite.forward(suite.input());
            long[] shape = new long[(int) out.dim()];
            Arrays.setAll(shape, d -> out.size(d));
            assertEquals(outputs, shape[shape.length - 1], () -> Arrays.toString(shape));
            try (PerSampleCheck check = PerSampleCheck.builder().model(suite.model()).inputs(suite.input()).build()) {
                CheckReport report = check.run(Engines.vmap());
                assertTrue(report.passed(), report::table);
            }
        }
    }

    @Test
    void embInputsAreIndicesBelowTheVocabulary() {
        try (Suite suite = Suite.build("emb", 16)) {
            assertArrayEquals(new long[] {16, 8}, new long[] {suite.input().size(0), suite.input().size(1)});
            assertTrue(suite.input().max().item_long() < 1000 && suite.input().min().item_long() >= 0);
        }
    }

    /** The probes the bench times: clean on every suite model, at the documented passes, whatever B. */
    @ParameterizedTest
    @CsvSource({"mlp, 32", "cnn, 32", "seq, 32", "emb, 32", "mlp, 256", "cnn, 256", "seq, 256", "emb, 256"})
    void theSuiteIsCleanUnderTheProbesAtTwoForwardsTheBitPartitionVjpsAndOneVmappedForward(String name, long batch) {
        try (Suite suite = Suite.build(name, batch); Batch samples = Batch.of(suite.input())) {
            ProbeReport report = Probes.report(suite.model(), samples, Probes.DEFAULT_PROBE_SAMPLES);
            assertTrue(report.passed(), report::toJson);
            long vjps = 2L * (64 - Long.numberOfLeadingZeros(batch - 1));
            assertEquals(new ProbeReport.Passes(2, vjps, 1, 0), report.passes(), report::toJson);
        }
    }

    @Test
    void unknownNamesAreBadInput() {
        BadInputException e = assertThrows(BadInputException.class, () -> Suite.named("resnet"));
        assertTrue(e.getMessage().contains("mlp, cnn, seq, emb"), e::getMessage);
        assertEquals(Suite.NAMES, Suite.named("ALL"));
    }
}
