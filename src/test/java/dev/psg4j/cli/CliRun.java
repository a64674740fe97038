package dev.psg4j.cli;

import dev.psg4j.Fixtures;

import com.fasterxml.jackson.databind.JsonNode;

import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;

/** One in-process run of the CLI with its exit status and captured stdout/stderr. */
record CliRun(int status, String out, String err) {

    /** Runs {@code new CommandLine(new Psg4jCli())}, as a user embedding the command would. */
    static CliRun of(String... args) {
        return on(new CommandLine(new Psg4jCli()), args);
    }

    /** Runs the command line exactly as {@code main} configures it. */
    static CliRun asMain(String... args) {
        return on(Psg4jCli.newCommandLine(), args);
    }

    private static CliRun on(CommandLine cli, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int status = cli.execute(args);
        return new CliRun(status, out.toString(), err.toString());
    }

    /** The stderr lines that are not blank. */
    List<String> errLines() {
        return err.lines().filter(l -> !l.isBlank()).toList();
    }

    String all() {
        return out + err;
    }

    /** {@code check} over a fixture as its manifest describes it (model, inputs, target, loss, batch dim). */
    static List<String> checkArgs(String fixture) {
        JsonNode e = Fixtures.entry(fixture);
        List<String> args = new ArrayList<>(List.of("check",
                "--model", Fixtures.file(fixture, "model.pt").toString(),
                "--input", Fixtures.file(fixture, e.get("inputs").get(0).asText()).toString(),
                "--loss", e.get("loss").asText(),
                "--batch-dim", e.get("batch_dim").asText()));
        if (e.hasNonNull("target")) {
            args.addAll(List.of("--target", Fixtures.file(fixture, e.get("target").asText()).toString()));
        }
        return args;
    }

    /** {@code check} of one candidate file of a fixture, for the candidate's reduction. */
    static List<String> candidateArgs(String fixture, String candidate) {
        List<String> args = checkArgs(fixture);
        String reduction = Fixtures.entry(fixture).get("candidates").get(candidate).get("reduction").asText();
        args.addAll(List.of("--candidate", Fixtures.file(fixture, candidate).toString(), "--reduction", reduction));
        return args;
    }

    @Override
    public String toString() {
        return "exit " + status + "\n--- stdout\n" + out + "--- stderr\n" + err;
    }
}
