package dev.psg4j.examples;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The training-loop example learns, and every sketch and exact check of its gradients passes. */
class DpSgdTrainingLoopTest {
    @Test
    void learnsWithEveryCheckPassing() {
        DpSgdTrainingLoop.Result result = DpSgdTrainingLoop.train(200, 32, 100, 3);
        assertEquals(List.of(), result.failedSteps(), result::summary);
        assertEquals(200, result.sketchChecks());
        assertEquals(2, result.exactChecks());
        assertTrue(result.lastLoss() < 0.8 * result.firstLoss(), result::summary);
    }
}
