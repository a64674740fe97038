package dev.psg4j.cli;

import dev.psg4j.BadInputException;
import dev.psg4j.ModelExecutionException;
import dev.psg4j.Psg4jException;
import dev.psg4j.UnsupportedModelException;

import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
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
     * Refuses an output path whose folder does not exist, before any work is done; {@code option}
     * names it in the message (e.g. "--json"). A null path (option not given) passes.
     */
    static void requireFolderOf(Path file, String option) {
        if (file == null) {
            return;
        }
        Path folder = file.toAbsolutePath().getParent();
        if (folder != null && !Files.isDirectory(folder)) {
            throw new BadInputException("cannot write " + option + " " + file + ": folder " + file.getParent()
                    + " does not exist; create it or give another " + option + " path");
        }
    }

    /**
     * Runs {@code write}, which writes {@code file} for {@code option}; an I/O failure becomes a
     * BadInputException saying which file could not be written and why.
     */
    static void writing(Path file, String option, Runnable write) {
        try {
            write.run();
        } catch (UncheckedIOException e) {
            throw new BadInputException("cannot write " + option + " " + file + " (" + e.getCause().getMessage()
                    + "): give a writable path", e);
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
