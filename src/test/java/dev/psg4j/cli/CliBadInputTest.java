package dev.psg4j.cli;

import dev.psg4j.Fixtures;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Usage beyond the bad-input corpus ({@link CliBadInputCorpusTest}): no subcommand, a plain
 * {@code CommandLine}, --version and --help.
 */
class CliBadInputTest {
    private static final String MODEL = Fixtures.file("mlp", "model.pt").toString();
    private static final String X = Fixtures.file("mlp", "x.pt").toString();

    /** The corpus (CliBadInputCorpusTest) runs subcommands; a command line without one is one line too. */
    @Test
    void noSubcommandIsOneLineThroughMain() {
        CliRun none = CliRun.asMain();
        assertEquals(2, none.status(), none::toString);
        assertEquals(1, none.errLines().size(), none::toString);
    }

    @Test
    void usageErrorsExitTwoWithPlainCommandLine() {
        CliRun run = CliRun.of("check", "--model", MODEL, "--input", X, "--batch-dim", "one");
        assertEquals(2, run.status(), run::toString);
        assertTrue(run.err().contains("--batch-dim"), run::toString);
    }

    @Test
    void versionAndHelpExitZero() {
        CliRun version = CliRun.of("--version");
        assertEquals(0, version.status(), version::toString);
        assertTrue(version.out().startsWith("psg4j "), version::toString);
        CliRun help = CliRun.of("check", "--help");
        assertEquals(0, help.status(), help::toString);
        assertTrue(help.out().contains("--candidate=GRADS.pt"), help::toString);
    }
}
