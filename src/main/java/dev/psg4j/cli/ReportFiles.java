package dev.psg4j.cli;

import dev.psg4j.BadInputException;

import picocli.CommandLine.Model.CommandSpec;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * The report files a command was asked for ({@code --json}, {@code --html}): paths refused before
 * any work where they cannot be files (no such folder, a directory), and written after the command
 * has printed its result, so that a file that cannot be written (a read-only or virtual file system,
 * a full disk) never hides the verdict.
 *
 * <p>Exit status when a file cannot be written: one line on stderr names the option, the file and
 * the system's reason. A run whose own status already says something failed keeps it (a check that
 * found a mismatch exits 1: what a CI script must see first), any other becomes 2 (the run did not
 * deliver what it was asked for).
 */
final class ReportFiles {
    private final Path json;
    private final Path html;

    private ReportFiles(Path json, Path html) {
        this.json = json;
        this.html = html;
    }

    /** The {@code --json} and {@code --html} paths (either may be null: not asked for), checked now. */
    static ReportFiles of(Path json, Path html) {
        requireWritable(json, "--json");
        requireWritable(html, "--html");
        return new ReportFiles(json, html);
    }

    /** The {@code --json} path only. */
    static ReportFiles json(Path json) {
        return of(json, null);
    }

    /**
     * Writes the files asked for, printing "{@code label} written to FILE" for each written; returns
     * {@code status}, or the status a write failure gives (see the class comment), its line on stderr.
     */
    int write(CommandSpec spec, int status, Consumer<Path> writeJson, String jsonLabel, Consumer<Path> writeHtml,
              String htmlLabel) {
        PrintWriter out = spec.commandLine().getOut();
        List<String> failures = new ArrayList<>();
        writeOne(json, "--json", writeJson, jsonLabel, out, failures);
        writeOne(html, "--html", writeHtml, htmlLabel, out, failures);
        out.flush();
        if (failures.isEmpty()) {
            return status;
        }
        PrintWriter err = spec.commandLine().getErr();
        err.println(spec.qualifiedName() + ": " + String.join("; ", failures) + ": give a writable path"
                + (status == Psg4jCli.PASSED ? "" : " (the result above stands)"));
        err.flush();
        return status == Psg4jCli.PASSED ? Psg4jCli.BAD_INPUT : status;
    }

    /** {@link #write} for a command with a JSON file only. */
    int write(CommandSpec spec, int status, Consumer<Path> writeJson, String jsonLabel) {
        return write(spec, status, writeJson, jsonLabel, null, null);
    }

    private static void writeOne(Path file, String option, Consumer<Path> writer, String label, PrintWriter out,
                                 List<String> failures) {
        if (file == null) {
            return;
        }
        try {
            writer.accept(file);
            out.println(label + " written to " + file);
        } catch (UncheckedIOException e) {
            failures.add("cannot write " + option + " " + file + " (" + reason(e.getCause()) + ")");
        }
    }

    /**
     * Refuses an output path whose folder does not exist, or that names a directory, before any
     * work is done; {@code option} names it in the message. A null path (not asked for) passes.
     */
    static void requireWritable(Path file, String option) {
        if (file == null) {
            return;
        }
        Path folder = file.toAbsolutePath().getParent();
        if (folder != null && !Files.isDirectory(folder)) {
            throw new BadInputException("cannot write " + option + " " + file + ": folder " + file.getParent()
                    + " does not exist; create it or give another " + option + " path");
        }
        if (Files.isDirectory(file)) {
            throw new BadInputException("cannot write " + option + " " + file + ": it is a directory; give a file "
                    + "path (e.g. " + file.resolve(option.equals("--html") ? "report.html" : "report.json") + ")");
        }
    }

    /** The system's reason an I/O call failed, without the path the message names already. */
    static String reason(IOException e) {
        if (e instanceof FileSystemException f) {
            if (f.getReason() != null) {
                return f.getReason();
            }
            if (f instanceof NoSuchFileException) {
                return "No such file or directory";
            }
            if (f instanceof AccessDeniedException) {
                return "Permission denied";
            }
            return f.getClass().getSimpleName();
        }
        String message = e.getMessage();
        if (e instanceof FileNotFoundException && message != null && message.endsWith(")") && message.contains(" (")) {
            // FileOutputStream's "path (reason)".
            return message.substring(message.lastIndexOf(" (") + 2, message.length() - 1);
        }
        if (e.getCause() instanceof IOException cause && cause != e) {
            return reason(cause);
        }
        return message == null ? e.getClass().getSimpleName() : Failures.oneLine(message);
    }
}
