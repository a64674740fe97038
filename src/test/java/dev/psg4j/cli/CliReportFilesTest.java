package dev.psg4j.cli;

import dev.psg4j.Fixtures;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A report file that cannot be written (--json, --html) never hides the result: the verdict and
 * the table come first, then one line on stderr naming the file and the system's reason. A check
 * that found a mismatch keeps exit status 1; a run that passed but could not write what it was
 * asked for exits 2. /proc is a folder in which nothing can be created, whoever runs the test.
 */
class CliReportFilesTest {
    private static final String JSON = "/proc/psg4j-report.json";
    private static final String HTML = "/proc/psg4j-report.html";

    private static List<String> check(String... more) {
        List<String> args = CliRun.checkArgs("mlp");
        args.addAll(List.of(more));
        return args;
    }

    /** The one stderr line: the command, each file with a reason in parentheses, and the remedy. */
    private static void assertWriteFailure(CliRun run, String command, String... optionAndFile) {
        assertEquals(1, run.errLines().size(), run::toString);
        String line = run.errLines().get(0);
        assertTrue(line.startsWith("psg4j " + command + ": cannot write "), line);
        for (int k = 0; k < optionAndFile.length; k += 2) {
            String named = Pattern.quote("cannot write " + optionAndFile[k] + " " + optionAndFile[k + 1]);
            assertTrue(Pattern.compile(named + " \\([A-Za-z][^)]+\\)").matcher(line).find(),
                    () -> "no reason for " + named + " in: " + line);
        }
        assertTrue(line.contains("give a writable path"), line);
    }

    @Test
    void aPassingCheckPrintsItsVerdictThenTheWriteErrorAndExitsTwo() {
        CliRun run = CliRun.asMain(check("--json", JSON).toArray(String[]::new));
        assertEquals(2, run.status(), run::toString);
        assertTrue(run.out().startsWith("PASSED") && run.out().contains(" reduction  parameter"), run::toString);
        assertWriteFailure(run, "check", "--json", JSON);
    }

    @Test
    void aFailingCheckPrintsItsVerdictAndKeepsExitOne() {
        List<String> args = CliRun.candidateArgs("mlp", "bug_swapped.pt");
        args.addAll(List.of("--html", HTML));
        CliRun run = CliRun.asMain(args.toArray(String[]::new));
        assertEquals(1, run.status(), run::toString);
        assertTrue(run.out().startsWith("FAILED") && run.out().contains("MISMATCH"), run::toString);
        assertWriteFailure(run, "check", "--html", HTML);
        assertTrue(run.errLines().get(0).endsWith("(the result above stands)"), run::toString);
    }

    @Test
    void twoFilesThatCannotBeWrittenAreOneLineAndAWritableOneIsStillWritten(@TempDir Path dir) {
        CliRun both = CliRun.asMain(check("--json", JSON, "--html", HTML).toArray(String[]::new));
        assertEquals(2, both.status(), both::toString);
        assertWriteFailure(both, "check", "--json", JSON, "--html", HTML);

        Path json = dir.resolve("report.json");
        CliRun one = CliRun.asMain(check("--json", json.toString(), "--html", HTML).toArray(String[]::new));
        assertEquals(2, one.status(), one::toString);
        assertTrue(Files.isRegularFile(json) && one.out().contains("JSON report written to " + json),
                one::toString);
        assertWriteFailure(one, "check", "--html", HTML);
    }

    @Test
    void probeAndBenchAndConformPrintTheirResultFirstToo() {
        CliRun probe = CliRun.asMain("probe", "--model", Fixtures.file("mlp", "model.pt").toString(), "--input",
                Fixtures.file("mlp", "x.pt").toString(), "--json", JSON);
        assertEquals(2, probe.status(), probe::toString);
        assertTrue(probe.out().startsWith("PASSED: B = 6"), probe::toString);
        assertWriteFailure(probe, "probe", "--json", JSON);

        List<String> bench = new ArrayList<>(List.of("bench", "--forks", "0", "--warmups", "0", "--iterations", "1",
                "--iteration-time", "20", "--suite", "emb", "--methods", "backward", "--batch", "2", "--html", HTML));
        CliRun timed = CliRun.asMain(bench.toArray(String[]::new));
        assertEquals(2, timed.status(), timed::toString);
        assertTrue(timed.out().contains("backward"), timed::toString);
        assertWriteFailure(timed, "bench", "--html", HTML);

        CliRun conform = CliRun.asMain("conform", "--engine", "vmap", "--reduction", "sum", "--batch", "2",
                "--only", "^Embedding\\(", "--json", JSON);
        assertEquals(2, conform.status(), conform::toString);
        assertTrue(conform.out().contains("passed"), conform::toString);
        assertWriteFailure(conform, "conform", "--json", JSON);
    }
}
