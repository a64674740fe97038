package dev.psg4j.cli;

import dev.psg4j.Fixtures;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code psg4j soak}'s usage: fewer than 20 samples is refused in one line before anything runs,
 * {@code --every} defaults to a 100th of the checks, and the summary gives each fitted slope with
 * its confidence interval and the samples used. (Its criterion is SoakTest's, in a JVM of its own.)
 */
class CliSoakTest {
    private static CliRun soak(String... more) {
        List<String> args = new java.util.ArrayList<>(List.of("soak",
                "--model", Fixtures.file("mlp", "model.pt").toString(),
                "--input", Fixtures.file("mlp", "x.pt").toString(),
                "--target", Fixtures.file("mlp", "y.pt").toString(), "--loss", "cross_entropy"));
        args.addAll(List.of(more));
        return CliRun.of(args.toArray(String[]::new));
    }

    @Test
    void fewerThanTwentySamplesAreRefusedInOneLine() {
        CliRun sparse = soak("--checks", "100", "--every", "10");
        assertEquals(2, sparse.status(), sparse::toString);
        assertEquals(1, sparse.errLines().size(), sparse::toString);
        assertTrue(sparse.err().contains("at least 20 samples") && sparse.err().contains("give 10"), sparse::toString);
        assertTrue(sparse.out().isBlank(), sparse::toString);
        CliRun few = soak("--checks", "12");
        assertEquals(2, few.status(), few::toString);
        assertTrue(few.err().contains("12 checks with a sample every 1 give 12"), few::toString);
    }

    @Test
    void theSummaryGivesTheFittedSlopesTheirIntervalsAndTheSamples() {
        CliRun run = soak("--checks", "40", "--warmup", "0", "--engine", "microbatch", "--shared-model");
        assertTrue(run.status() == 0 || run.status() == 1, run::toString);
        long rows = run.out().lines().filter(l -> l.matches("\\s+\\d+\\s+[\\d.]+\\s+[\\d.]+\\s+[\\d.]+\\s+\\d+")).count();
        assertEquals(40, rows, run::toString);
        assertTrue(run.out().matches("(?s).*native memory [\\d.]+ MB -> [\\d.]+ MB: [+-]\\d+ bytes per check "
                + "\\(95 % CI \\+/- \\d+; limit 1024\\).*"), run::toString);
        assertTrue(run.out().matches("(?s).*live pointers \\d+ -> \\d+: [+-][\\d.]+ per check \\(95 % CI \\+/- [\\d.]+; "
                + "limit 0\\.01\\).*"), run::toString);
        assertTrue(run.out().contains("least-squares slopes over 40 samples, checks 1 to 40: "
                + (run.status() == 0 ? "bounded" : "GROWING")), run::toString);
    }
}
