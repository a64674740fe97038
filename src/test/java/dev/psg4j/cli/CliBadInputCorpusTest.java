package dev.psg4j.cli;

import dev.psg4j.BadFiles;
import dev.psg4j.Fixtures;

import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CLI's bad-input corpus: what a new user gets wrong, each answered with exit status 2 and
 * exactly one line on stderr that names the real cause (the phrase each case expects) and says
 * what to do: never a crash, a hang, a silent pass or a message blaming something else. The
 * command line runs as {@code main} configures it. Files come from the mlp fixture,
 * src/test/resources/fixtures/bad (src/test/python/make_bad_fixtures.py) and, for a directory or
 * an empty file, from a folder made per test.
 */
class CliBadInputCorpusTest {
    private static final String MODEL = mlp("model.pt");
    private static final String X = mlp("x.pt");
    private static final String Y = mlp("y.pt");
    private static final String GRADS_SUM = mlp("grads_func_sum.pt");

    @TempDir
    Path dir;

    private static String mlp(String name) {
        return Fixtures.file("mlp", name).toString();
    }

    private static String bad(String name) {
        return Fixtures.root().resolve("bad").resolve(name).toString();
    }

    /** {@code check} of the mlp fixture (cross_entropy against y.pt), then {@code more}. */
    private static List<String> check(String... more) {
        List<String> args = new ArrayList<>(List.of("check", "--model", MODEL, "--input", X, "--target", Y,
                "--loss", "cross_entropy"));
        args.addAll(List.of(more));
        return args;
    }

    /**
     * {@code check} with {@code file} in place of the mlp fixture's {@code option}, and the options
     * of {@code more} (an option and its value, or a flag) replacing those given already.
     */
    private static List<String> checkWith(String option, String file, String... more) {
        List<String> args = check();
        set(args, option, file);
        for (int k = 0; k < more.length; k++) {
            boolean hasValue = k + 1 < more.length && !more[k + 1].startsWith("--");
            if (hasValue) {
                set(args, more[k], more[++k]);
            } else {
                args.add(more[k]);
            }
        }
        return args;
    }

    private static void set(List<String> args, String option, String value) {
        int at = args.indexOf(option);
        if (at < 0) {
            args.addAll(List.of(option, value));
        } else {
            args.set(at + 1, value);
        }
    }

    private static Arguments of(String what, List<String> args, String mentions) {
        return Arguments.of(what, (Function<Path, List<String>>) dir -> args, mentions);
    }

    /** A case whose files are made in the test's own folder. */
    private static Arguments inDir(String what, Function<Path, List<String>> args, String mentions) {
        return Arguments.of(what, args, mentions);
    }

    private static String emptyFile(Path dir) {
        try {
            return Files.createFile(dir.resolve("empty.pt")).toString();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static Stream<Arguments> badInputs() {
        return Stream.of(
                // Files that are missing, folders, empty or of the wrong kind.
                of("missing model file", List.of("check", "--model", mlp("no_such_model.pt"), "--input", X),
                        "model file " + mlp("no_such_model.pt") + " does not exist"),
                of("corrupt.pt as model", List.of("check", "--model", Fixtures.root().resolve("corrupt.pt").toString(),
                        "--input", X), "cannot load"),
                of("tensor_only.pt as model", List.of("check", "--model",
                        Fixtures.root().resolve("tensor_only.pt").toString(), "--input", X), "not torch.save"),
                of("an input file as model", List.of("check", "--model", X, "--input", X), "as a TorchScript module"),
                inDir("a directory as model", d -> List.of("check", "--model", d.toString(), "--input", X),
                        "is a directory, not a file: give a TorchScript file"),
                of("missing input file", List.of("check", "--model", MODEL, "--input", mlp("no_such_x.pt")),
                        mlp("no_such_x.pt") + " does not exist: give the file written by torch.save"),
                inDir("a directory as input", d -> checkWith("--input", d.toString()), "is a directory"),
                inDir("a directory as target", d -> checkWith("--target", d.toString()), "is a directory"),
                inDir("a directory as candidate", d -> check("--candidate", d.toString(), "--reduction", "sum"),
                        "is a directory, not a file: give the file written by torch.save"),
                inDir("a named pipe as model", d -> checkWith("--model", BadFiles.fifo(d, "m.pt").toString()),
                        "model file %DIR%/m.pt is a named pipe (FIFO), not a regular file"),
                inDir("a named pipe as input", d -> checkWith("--input", BadFiles.fifo(d, "x.pt").toString()),
                        "%DIR%/x.pt is a named pipe (FIFO), not a regular file: psg4j reads only regular "
                                + "files"),
                inDir("a named pipe as target", d -> checkWith("--target", BadFiles.fifo(d, "y.pt").toString()),
                        "is a named pipe (FIFO)"),
                inDir("a named pipe as candidate", d -> check("--candidate", BadFiles.fifo(d, "g.pt").toString(),
                        "--reduction", "sum"), "is a named pipe (FIFO)"),
                inDir("a named pipe as norms", d -> check("--candidate-norms", BadFiles.fifo(d, "n.pt").toString(),
                        "--reduction", "sum"), "is a named pipe (FIFO)"),
                inDir("a named pipe as plug-in", d -> check("--engine", "x", "--plugin",
                        BadFiles.fifo(d, "p.jar").toString()), "plug-in %DIR%/p.jar is a named pipe"),
                of("/dev/zero as input", checkWith("--input", "/dev/zero"),
                        "/dev/zero is a character device, not a regular file"),
                of("/dev/null as model", checkWith("--model", "/dev/null"),
                        "model file /dev/null is a character device, not a regular file"),
                inDir("a symbolic link loop as input", d -> checkWith("--input",
                        BadFiles.symlinkLoop(d, "x.pt").toString()), "x.pt is a symbolic link loop"),
                inDir("a symbolic link loop as model", d -> checkWith("--model",
                        BadFiles.symlinkLoop(d, "m.pt").toString()), "m.pt is a symbolic link loop"),
                inDir("a dangling symbolic link as input", d -> checkWith("--input",
                        BadFiles.danglingLink(d, "x.pt").toString()),
                        "x.pt is a symbolic link to " + "%DIR%/no_such_target.pt, which does not exist"),
                inDir("a 1 TiB input", d -> checkWith("--input", BadFiles.sparse(d, "x.pt", 1L << 40).toString()),
                        "x.pt is 1.0 TiB, more than the "),
                inDir("a 1 TiB model", d -> checkWith("--model", BadFiles.sparse(d, "m.pt", 1L << 40).toString()),
                        "m.pt is 1.0 TiB, more than the "),
                inDir("a meta-device tensor as input", d -> checkWith("--input",
                        BadFiles.metaTensor(d, "x.pt", true).toString()),
                        "x.pt holds a tensor on the meta device, which has a shape but no data"),
                inDir("a meta-device tensor without its data record", d -> checkWith("--input",
                        BadFiles.metaTensor(d, "x.pt", false).toString()),
                        "x.pt holds a tensor on the meta device, which has a shape but no data"),
                inDir("probe: a named pipe as input", d -> List.of("probe", "--model", MODEL, "--input",
                        BadFiles.fifo(d, "x.pt").toString()), "is a named pipe (FIFO)"),
                inDir("bench: a named pipe as input", d -> List.of("bench", "--model", MODEL, "--input",
                        BadFiles.fifo(d, "x.pt").toString()), "is a named pipe (FIFO)"),
                inDir("conform: a named pipe as manifest", d -> {
                    BadFiles.fifo(d, "manifest.json");
                    return List.of("conform", "--torchscript", d.toString());
                }, "manifest.json is a named pipe (FIFO)"),
                of("bench: B = 1000000 on mlp", List.of("bench", "--batch", "1000000", "--suite", "mlp", "--methods",
                        "vmap"), "mlp at B = 1000000 needs about "),
                inDir("an empty input file", d -> checkWith("--input", emptyFile(d)), "is empty"),
                inDir("an empty target file", d -> checkWith("--target", emptyFile(d)), "is empty"),
                inDir("an empty candidate file", d -> check("--candidate", emptyFile(d), "--reduction", "sum"),
                        "is empty"),
                of("a model file as input", checkWith("--input", MODEL), MODEL + " holds a TorchScript module "
                        + "(torch.jit.save), not tensors"),
                of("corrupt.pt as target", checkWith("--target", Fixtures.root().resolve("corrupt.pt").toString()),
                        "as a torch.save file"),
                of("a dict of gradients as input", checkWith("--input", GRADS_SUM),
                        "--input " + GRADS_SUM + " holds a dict of 4 tensors"),
                of("a dict of gradients as target", checkWith("--target", GRADS_SUM), "--target " + GRADS_SUM
                        + " holds a dict"),
                // Inputs the model cannot take.
                of("input with 7 features for Linear(8, 16)", checkWith("--input", bad("x_7_features.pt")),
                        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (6x7 and 8x16)"),
                of("input with 7 features, microbatch engine", checkWith("--input", bad("x_7_features.pt"),
                        "--engine", "microbatch", "--no-probes"), "mat1 and mat2 shapes cannot be multiplied"),
                of("input with 7 features, vmap engine", checkWith("--input", bad("x_7_features.pt"),
                        "--no-probes"), "mat1 and mat2 shapes cannot be multiplied"),
                of("float64 input for a float32 model", checkWith("--input", bad("x_float64.pt")),
                        "input 0 is Double but the model's parameters are Float: save the batch in the model's dtype"),
                of("int64 input for a float32 model", checkWith("--input", bad("x_int64.pt")),
                        "input 0 is Long (integers) but the model computes in Float: save the batch as x.float()"),
                inDir("int32 input for a float32 model", d -> checkWith("--input", BadFiles.tensor(d, "x_int32.pt",
                        torch.ones(6, 8).to(torch.ScalarType.Int)).toString()),
                        "input 0 is Int (integers) but the model computes in Float: save the batch as x.float()"),
                inDir("uint8 input for a float32 model", d -> checkWith("--input", BadFiles.tensor(d, "x_uint8.pt",
                        torch.ones(6, 8).to(torch.ScalarType.Byte)).toString()),
                        "input 0 is Byte (integers) but the model computes in Float: save the batch as x.float()"),
                inDir("float32 input for a float64 model", d -> checkWith("--model",
                        BadFiles.mlpModelIn(d, torch.ScalarType.Double).toString()),
                        "input 0 is Float but the model's parameters are Double: save the batch in the model's dtype "
                                + "(x.double()) or the model in the batch's (model.float())"),
                inDir("float32 input for a float16 model", d -> checkWith("--model",
                        BadFiles.mlpModelIn(d, torch.ScalarType.Half).toString()),
                        "input 0 is Float but the model's parameters are Half: save the batch in the model's dtype "
                                + "(x.half())"),
                of("a scalar as input", checkWith("--input", bad("x_scalar.pt")), "input 0 is a scalar (shape [])"),
                of("an empty tuple as input", checkWith("--input", bad("x_empty_tuple.pt")),
                        "holds a tuple of 0 tensors: save at least one tensor"),
                of("a list holding a number as input", checkWith("--input", bad("x_list_with_int.pt")),
                        "element 1 holds a value of type Int, not a tensor"),
                of("two inputs for a one-input model", List.of("check", "--model", MODEL, "--input",
                        Fixtures.file("two_input", "x.pt").toString()),
                        "Expected at most 2 argument(s) for operator 'forward', but received 3 argument(s)"),
                of("sparse input", checkWith("--input", bad("x_sparse.pt")), "holds a sparse tensor, which psg4j cannot "
                        + "read: save dense tensors (t.to_dense())"),
                of("targets of another batch size", checkWith("--target",
                        Fixtures.file("two_input", "y.pt").toString()), "target 0 has batch size 4"),
                // cross_entropy and mse targets.
                of("class index 7 of 4 classes, vmap engine", checkWith("--target", bad("y_out_of_range.pt")),
                        "sample 3's cross_entropy target is 7, not a class index of the model's 4 classes"),
                of("class index 7 of 4 classes, microbatch engine", checkWith("--target", bad("y_out_of_range.pt"),
                        "--engine", "microbatch"), "sample 3's cross_entropy target is 7"),
                of("class index 7 of 4 classes, vmap in chunks of 2", checkWith("--target", bad("y_out_of_range.pt"),
                        "--chunk-size", "2"), "sample 3's cross_entropy target is 7"),
                of("class index 7 of 4 classes, --candidate", checkWith("--target", bad("y_out_of_range.pt"),
                        "--candidate", GRADS_SUM, "--reduction", "sum"), "sample 3's cross_entropy target is 7"),
                of("class index -5", checkWith("--target", bad("y_negative.pt")),
                        "sample 2's cross_entropy target is -5"),
                of("class indices shaped [B, 1]", checkWith("--target", bad("y_column.pt")),
                        "the cross_entropy target has shape [1, 1] but the model's output of shape [1, 4]"),
                of("float class numbers", checkWith("--target", bad("y_float.pt")),
                        "cross_entropy takes class-index targets (an integer tensor), got dtype Float"),
                of("bool targets", checkWith("--target", bad("y_bool.pt")), "got dtype Bool"),
                of("mse targets shaped [B] for outputs [B, 4]", checkWith("--target", bad("y_mse_wrong_shape.pt"),
                        "--loss", "mse"), "the mse target has shape [1] but the model's output has shape [1, 4]"),
                of("mse targets shaped [B] for outputs [B, 4], microbatch", checkWith("--target",
                        bad("y_mse_wrong_shape.pt"), "--loss", "mse", "--engine", "microbatch"),
                        "the mse target has shape [1]"),
                of("integer mse targets", checkWith("--target", bad("y_mse_int.pt"), "--loss", "mse"),
                        "give floating-point targets"),
                // Candidates of the wrong kind.
                of("a single tensor as candidate", check("--candidate", X, "--reduction", "sum"),
                        "holds a single tensor, not a dict"),
                of("a tuple as candidate", check("--candidate", bad("candidate_tuple.pt"), "--reduction", "sum"),
                        "holds a tuple of 4 tensors, not a dict: save a dict {name: tensor}"),
                of("a list as candidate", check("--candidate", bad("candidate_list.pt"), "--reduction", "sum"),
                        "holds a list of 4 tensors, not a dict"),
                of("a sparse candidate", check("--candidate", bad("candidate_sparse.pt"), "--reduction", "sum"),
                        "candidate_sparse.pt holds a sparse tensor, which psg4j cannot read: save dense tensors"),
                of("--candidate with --reduction both", check("--candidate", GRADS_SUM),
                        "say which with --reduction sum or --reduction mean"),
                // Options.
                of("--batch-dim 5", check("--batch-dim", "5"), "batch dimension 5 is out of range for input 0"),
                of("--batch-dim -3", check("--batch-dim", "-3"), "batch dimension -3 is out of range"),
                of("--batch-dim -1 with targets of one dimension", check("--batch-dim", "-1"),
                        "--batch-dim -1 takes dimension 1 of input 0 (shape [6, 8]) as the batch, 8 samples, but "
                                + "dimension 0 of target 0 (shape [6]) holds 6 (the targets' batch dimension is "
                                + "--batch-dim unless --target-batch-dim gives theirs): if the samples are along "
                                + "dimension 0 of input 0, give --batch-dim 0"),
                of("--batch-dim -2 with targets of one dimension", check("--batch-dim", "-2"),
                        "--batch-dim -2 is out of range for target 0 (shape [6]), rank 1 (the targets' batch dimension "
                                + "is --batch-dim unless --target-batch-dim gives theirs): give --target-batch-dim 0"),
                of("--target-batch-dim 1 of 1-d targets", check("--target-batch-dim", "1"),
                        "batch dimension 1 is out of range for target 0"),
                of("unknown --loss", List.of("check", "--model", MODEL, "--input", X, "--loss", "hinge"),
                        "unknown loss 'hinge'"),
                of("cross_entropy without --target", List.of("check", "--model", MODEL, "--input", X,
                        "--loss", "cross_entropy"), "needs targets: give --target Y.pt"),
                of("mse without --target", List.of("check", "--model", MODEL, "--input", X, "--loss", "mse"),
                        "loss mse needs targets"),
                of("unknown --engine", check("--engine", "opacus"), "unknown engine 'opacus': the registered grad samplers are vmap, microbatch"),
                of("negative --chunk-size", check("--chunk-size", "-2"), "chunk size must be positive"),
                of("unknown --randomness", check("--randomness", "maybe"), "use error, different or same"),
                of("--device cuda", check("--device", "cuda"), "--device cpu"),
                of("unknown --device", check("--device", "tpu"), "unknown device 'tpu'"),
                of("unknown --reduction", check("--reduction", "max"), "sum, mean or both"),
                of("--threads 0", check("--threads", "0"), "--threads must be between 1 and"),
                of("--threads -1", check("--threads", "-1"), "got -1"),
                of("--threads 100000", check("--threads", "100000"), "got 100000"),
                of("--threads 2147483647", check("--threads", "2147483647"), "available processors), got 2147483647"),
                of("negative --atol", check("--atol", "-1"), "tolerances must be finite and >= 0"),
                of("--atol NaN", check("--atol", "NaN"), "atol=NaN"),
                of("--rtol Infinity", check("--rtol", "Infinity"), "rtol=Infinity"),
                of("--projections without --mode sketch", check("--projections", "4"),
                        "--projections applies to --mode sketch only: add --mode sketch, or drop --projections"),
                of("--seed without --mode sketch", check("--seed", "7"), "--seed applies to --mode sketch only"),
                of("--chunk-size with --candidate", check("--candidate", GRADS_SUM, "--reduction", "sum",
                        "--chunk-size", "2"), "--chunk-size applies to a check that runs an engine only: the gradients "
                        + "come from --candidate, so no engine runs; drop --chunk-size"),
                of("--engine with --candidate", check("--candidate", GRADS_SUM, "--reduction", "sum",
                        "--engine", "microbatch"), "--engine applies to a check that runs an engine only"),
                of("--randomness with --candidate-norms", check("--candidate-norms", GRADS_SUM, "--reduction", "sum",
                        "--randomness", "same"), "the gradients come from --candidate-norms, so no engine runs"),
                of("--probe-samples with --no-probes", check("--no-probes", "--probe-samples", "3"),
                        "--probe-samples applies to the probes only: --no-probes skips them"),
                of("--cuda-graphs on the cpu", check("--cuda-graphs"), "--cuda-graphs applies to --device cuda only"),
                of("--target-batch-dim without --target", List.of("check", "--model", MODEL, "--input", X,
                        "--target-batch-dim", "0"), "--target-batch-dim applies to --target only"),
                of("--plugin without --engine", check("--plugin", MODEL), "--plugin given without --engine"),
                of("conform: --plugin without --engine", List.of("conform", "--plugin", MODEL),
                        "--plugin given without --engine"),
                of("--json in a missing folder", check("--json", mlp("no_such_dir/report.json")),
                        "folder " + mlp("no_such_dir") + " does not exist"),
                of("--html in a missing folder", check("--html", mlp("no_such_html_dir/report.html")),
                        "no_such_html_dir does not exist"),
                inDir("--json naming a directory", d -> check("--json", d.toString()),
                        "cannot write --json %DIR%: it is a directory; give a file path"),
                inDir("--html naming a directory", d -> check("--html", d.toString()),
                        "cannot write --html %DIR%: it is a directory"),
                // Usage errors (picocli's own, one line through main).
                of("unknown option", check("--no-such-option"), "Unknown option: '--no-such-option'"),
                of("missing --model", List.of("check", "--input", X), "Missing required option: '--model=M.pt'"),
                of("--batch-dim one", check("--batch-dim", "one"), "Invalid value for option '--batch-dim'"),
                of("--threads many", check("--threads", "many"), "Invalid value for option '--threads'"),
                // The probe command shares the batch options.
                of("probe: a dict as input", List.of("probe", "--model", MODEL, "--input", GRADS_SUM),
                        "holds a dict of 4 tensors"),
                inDir("probe: a directory as input", d -> List.of("probe", "--model", MODEL, "--input", d.toString()),
                        "is a directory"));
    }

    /**
     * Each case ends within seconds: a FIFO or a device that psg4j opened would block or never end,
     * so the case runs on a thread of its own and fails at the timeout instead of hanging the suite.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("badInputs")
    @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void exitsTwoWithOneLineNamingTheCause(String what, Function<Path, List<String>> args, String expected) {
        List<String> line = args.apply(dir);
        String mentions = expected.replace("%DIR%", dir.toString());
        CliRun run = CliRun.asMain(line.toArray(String[]::new));
        assertEquals(2, run.status(), run::toString);
        assertEquals(1, run.errLines().size(), () -> "not one line on stderr:\n" + run);
        String err = run.errLines().get(0);
        assertTrue(err.startsWith("psg4j " + line.get(0) + ": "), err);
        assertTrue(err.contains(mentions), () -> "'" + mentions + "' not in: " + err);
        assertFalse(err.contains("Exception") || err.contains("\tat ") || err.contains("internal error"), err);
        assertFalse(err.contains("The following operation failed"), err);
        assertFalse(run.out().startsWith("PASSED") || run.out().startsWith("FAILED"), run::toString);
    }

    /** A dict is a dict, whatever its keys: its '' key is one more name that is no parameter. */
    @Test
    void aDictWithAnEmptyKeyIsCheckedAsADict() {
        CliRun run = CliRun.asMain(check("--candidate", bad("candidate_empty_key.pt"), "--reduction", "sum")
                .toArray(String[]::new));
        assertEquals(1, run.status(), run::toString);
        assertTrue(run.out().contains("sum / 0.weight: the candidate has no gradient"), run::toString);
        assertTrue(run.out().contains("sum / : the candidate has a gradient for '', which is not a trainable"),
                run::toString);
    }

    /** ignore_index -100 is a valid class index: not refused. */
    @Test
    void ignoreIndexIsAValidTarget() {
        CliRun run = CliRun.asMain(checkWith("--target", bad("y_ignore_index.pt"), "--reduction", "sum")
                .toArray(String[]::new));
        assertEquals(0, run.status(), run::toString);
    }
}
