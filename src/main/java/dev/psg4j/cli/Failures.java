package dev.psg4j.cli;

import dev.psg4j.BadInputException;
import dev.psg4j.ModelExecutionException;
import dev.psg4j.Psg4jException;
import dev.psg4j.UnsupportedModelException;

import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.util.concurrent.Callable;

/** How the CLI turns exceptions into exit status 2 and one line on stderr. */
final class Failures {
    private Failures() {
    }

    /** Runs {@code body}; any exception becomes exit status 2 with {@link #describe}'s line on stderr. */
    static int guarded(CommandSpec spec, Callable<Integer> body) {
        try {
            return body.call();
        } catch (Exception | LinkageError e) {
            PrintWriter err = spec.commandLine().getErr();
            err.println(describe(spec.qualifiedName(), e));
            err.flush();
            return Psg4jCli.BAD_INPUT;
        }
    }

    /** One line: what went wrong; unexpected exceptions are an 'internal error'. */
    static String describe(String command, Throwable e) {
        if (e instanceof BadInputException) {
            return command + ": " + oneLine(e.getMessage());
        }
        if (e instanceof UnsupportedModelException) {
            return command + ": " + oneLine(e.getMessage());
        }
        if (e instanceof ModelExecutionException) {
            return command + ": the model or loss failed: " + oneLine(e.getMessage());
        }
        if (e instanceof Psg4jException) {
            return command + ": " + oneLine(e.getMessage());
        }
        return "internal error: " + oneLine(e.toString()) + " (please report it with the command line that caused it)";
    }

    /**
     * Refuses {@code option} where the user gave it but it does not apply to this command line
     * (rather than ignoring it silently): one line saying what it applies to and what to do.
     */
    static void requireApplies(CommandSpec spec, String option, boolean applies, String appliesTo, String remedy) {
        if (!applies && spec.commandLine().getParseResult().hasMatchedOption(option)) {
            throw new BadInputException(option + " applies to " + appliesTo + " only: " + remedy);
        }
    }

    /** The first non-blank line of {@code message}, trimmed. */
    static String oneLine(String message) {
        if (message == null) {
            return "(no message)";
        }
        for (String line : message.split("\\R")) {
            if (!line.isBlank()) {
                return line.strip();
            }
        }
        return "(no message)";
    }
}
