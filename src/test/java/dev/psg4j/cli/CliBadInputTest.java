package dev.psg4j.cli;

import dev.psg4j.Fixtures;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad usage and bad input: exit 2 and exactly one line on stderr that says what and how to fix it. */
class CliBadInputTest {
    private static final String MODEL = Fixtures.file("mlp", "model.pt").toString();
    private static final String X = Fixtures.file("mlp", "x.pt").toString();
    private static final String Y = Fixtures.file("mlp", "y.pt").toString();

    private static List<String> mlp(String... more) {
        List<String> args = new ArrayList<>(List.of("check", "--model", MODEL, "--input", X, "--target", Y,
                "--loss", "cross_entropy"));
        args.addAll(List.of(more));
        return args;
    }

    static Stream<Arguments> badInputs() {
        return Stream.of(
                Arguments.of("missing model file", List.of("check", "--model",
                        Fixtures.file("mlp", "no_such_model.pt").toString(), "--input", X), "does not exist"),
                Arguments.of("corrupt.pt as model", List.of("check", "--model",
                        Fixtures.root().resolve("corrupt.pt").toString(), "--input", X), "TorchScript"),
                Arguments.of("tensor_only.pt as model", List.of("check", "--model",
                        Fixtures.root().resolve("tensor_only.pt").toString(), "--input", X), "TorchScript"),
                Arguments.of("missing input file", List.of("check", "--model", MODEL, "--input",
                        Fixtures.file("mlp", "no_such_x.pt").toString()), "no_such_x.pt"),
                Arguments.of("--batch-dim 5", mlp("--batch-dim", "5"), "5"),
                Arguments.of("--candidate with --reduction both", mlp("--candidate",
                        Fixtures.file("mlp", "grads_func_sum.pt").toString()), "--reduction sum"),
                Arguments.of("unknown --loss", List.of("check", "--model", MODEL, "--input", X, "--loss", "hinge"),
                        "unknown loss 'hinge'"),
                Arguments.of("cross_entropy without --target", List.of("check", "--model", MODEL, "--input", X,
                        "--loss", "cross_entropy"), "--target"),
                Arguments.of("unknown --engine", mlp("--engine", "opacus"), "use --engine vmap or microbatch"),
                Arguments.of("negative --chunk-size", mlp("--chunk-size", "-2"), "chunk size must be positive"),
                Arguments.of("unknown --randomness", mlp("--randomness", "maybe"), "use error, different or same"),
                Arguments.of("--device cuda", mlp("--device", "cuda"), "--device cpu"),
                Arguments.of("unknown --reduction", mlp("--reduction", "max"), "sum, mean or both"),
                Arguments.of("--threads 0", mlp("--threads", "0"), "threads"),
                Arguments.of("negative --atol", mlp("--atol", "-1"), "tolerances"),
                Arguments.of("single tensor as --candidate", mlp("--candidate", X, "--reduction", "sum"), "dict"),
                Arguments.of("--json in a missing folder", mlp("--json",
                        Fixtures.file("mlp", "no_such_dir/report.json").toString()), "no_such_dir"),
                Arguments.of("--html in a missing folder", mlp("--html",
                        Fixtures.file("mlp", "no_such_html_dir/report.html").toString()), "no_such_html_dir"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badInputs")
    void exitsTwoWithOneLine(String what, List<String> args, String mentions) {
        CliRun run = CliRun.of(args.toArray(String[]::new));
        assertEquals(2, run.status(), run::toString);
        assertEquals(1, run.errLines().size(), () -> "not one line on stderr:\n" + run);
        String line = run.errLines().get(0);
        assertTrue(line.startsWith("psg4j check: "), line);
        assertTrue(line.contains(mentions), () -> "'" + mentions + "' not in: " + line);
        assertFalse(line.contains("Exception") || line.contains("\tat "), line);
        assertFalse(run.out().startsWith("PASSED") || run.out().startsWith("FAILED"), run::toString);
    }

    @Test
    void usageErrorsAreOneLineThroughMain() {
        CliRun run = CliRun.asMain("check", "--model", MODEL, "--input", X, "--no-such-option");
        assertEquals(2, run.status(), run::toString);
        assertEquals(1, run.errLines().size(), run::toString);
        assertTrue(run.errLines().get(0).contains("--no-such-option"), run::toString);

        CliRun missing = CliRun.asMain("check", "--input", X);
        assertEquals(2, missing.status(), missing::toString);
        assertEquals(List.of("psg4j check: Missing required option: '--model=M.pt' (see 'psg4j check --help')"),
                missing.errLines());

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
