package dev.psg4j.cli;

import dev.psg4j.Fixtures;

import org.junit.jupiter.api.Test;

import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;

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

    /**
     * Every subcommand's help renders without picocli's format warnings (an unescaped '%' once made
     * it print one to stderr), and the command list gives each a whole sentence as its summary.
     */
    @Test
    void everySubcommandsHelpRendersCleanlyWithASentenceAsItsSummary() {
        PrintStream stderr = System.err;
        ByteArrayOutputStream warnings = new ByteArrayOutputStream();
        Map<String, CommandLine> subcommands = Psg4jCli.newCommandLine().getSubcommands();
        try {
            System.setErr(new PrintStream(warnings, true, StandardCharsets.UTF_8));
            subcommands.values().forEach(CommandLine::getUsageMessage);
        } finally {
            System.setErr(stderr);
        }
        assertEquals("", warnings.toString(StandardCharsets.UTF_8));
        subcommands.forEach((name, command) -> {
            String[] summary = command.getCommandSpec().usageMessage().header();
            String[] lines = summary.length > 0 ? summary : command.getCommandSpec().usageMessage().description();
            assertTrue(lines[0].strip().endsWith("."), () -> name + "'s summary: " + lines[0]);
        });
    }
}
