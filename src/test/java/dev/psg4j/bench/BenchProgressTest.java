package dev.psg4j.bench;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The progress bar over a whole bench run: one step per model checked, one per JMH iteration, ending full. */
class BenchProgressTest {
    @BeforeAll
    static void shareTheJmhLock() {
        System.setProperty("jmh.ignoreLock", "true");
    }

    @Test
    void theBarCountsEveryCheckAndIterationOfTheSweepAndEndsFull() {
        ByteArrayOutputStream drawn = new ByteArrayOutputStream();
        BenchResult result;
        try (PrintStream bar = new PrintStream(drawn, true, StandardCharsets.UTF_8)) {
            result = Bench.builder().suites(List.of("emb")).methods(List.of(BenchMethod.BACKWARD, BenchMethod.VMAP))
                    .batches(List.of(2L, 3L)).forks(0).warmups(1).iterations(2).iterationMillis(10)
                    .progress(bar).run();
        }
        assertEquals(4, result.rows().size());
        // 2 checks before JMH (one per B), then 2 methods x 2 B x (1 warm-up + 2 measured) iterations
        long total = 2 + 2 * 2 * 3;
        String text = drawn.toString(StandardCharsets.UTF_8);
        String last = text.substring(text.lastIndexOf('\r') + 1);
        assertTrue(last.contains("100%") && last.contains(total + "/" + total), () -> "the bar's last state: " + last);
        assertTrue(last.matches("(?s).*emb/(vmap|backward) B=[23] t=1.*"), () -> "the last benchmark is not named: " + last);
    }
}
