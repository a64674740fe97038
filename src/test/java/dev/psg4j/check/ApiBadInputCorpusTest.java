package dev.psg4j.check;

import dev.psg4j.BadFiles;
import dev.psg4j.BadInputException;
import dev.psg4j.Fixtures;
import dev.psg4j.ModelExecutionException;
import dev.psg4j.UnsupportedModelException;
import dev.psg4j.bench.Bench;
import dev.psg4j.engine.Engines;
import dev.psg4j.engine.GradSamplers;
import dev.psg4j.engine.TensorMaps;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.FailureKind;

import org.bytedeco.pytorch.JitModule;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java API's bad-input corpus: every wrong argument is a typed exception (the class each case
 * expects) whose message names the real cause (the phrase each case expects) and what to pass
 * instead: never a bare NullPointerException, a JavaCPP null-pointer error or a crash. Then
 * unusual input that is no error: the caller's own exception, a failing report, a check that works.
 */
class ApiBadInputCorpusTest {
    /** Linear(4, 2): a two-class classifier of 4 features. */
    private static Model linear() {
        torch.manual_seed(1);
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("fc", new LinearImpl(4, 2));
        return Models.module(seq);
    }

    private static Tensor x() {
        return torch.ones(3, 4);
    }

    private static Tensor closed() {
        Tensor t = torch.ones(3, 4);
        t.close();
        return t;
    }

    private static Map<String, Tensor> weight() {
        return Map.of("w", torch.ones(2, 4).requires_grad_(true));
    }

    /** Runs {@code engine} over linear() on x() with cross_entropy against {@code y}. */
    private static void crossEntropy(GradSampler engine, Tensor y) {
        try (Model m = linear();
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(x()).targets(y)
                     .loss(Loss.CROSS_ENTROPY).reduction(Reduction.SUM).build()) {
            check.run(engine);
        }
    }

    private static void mse(GradSampler engine, Tensor y) {
        try (Model m = linear();
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(x()).targets(y)
                     .loss(Loss.MSE).reduction(Reduction.SUM).build()) {
            check.run(engine);
        }
    }

    /** A check of linear() on x() against {@code candidate} for reduction sum. */
    private static void candidate(Map<String, Tensor> candidate) {
        try (Model m = linear();
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(x()).reduction(Reduction.SUM).build()) {
            check.run(Engines.precomputed("candidate", Reduction.SUM, candidate));
        }
    }

    private static Map<String, Tensor> referenceWith(String name, UnaryOperator<Tensor> change) {
        try (Model m = linear(); Batch batch = Batch.of(x())) {
            Map<String, Tensor> grads = new LinkedHashMap<>(
                    Engines.microbatch().perSampleGradients(m, batch, Loss.L1, Reduction.SUM));
            grads.put(name, change.apply(grads.get(name)));
            return grads;
        }
    }

    /** A function model whose forward returns {@code result}. */
    private static void forwardReturning(Tensor result) {
        try (Model m = Models.function("returner", weight(), (in, p) -> result);
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(x()).probes(false).build()) {
            check.run(Engines.microbatch());
        }
    }

    private static void customLossReturning(Tensor result) {
        try (Model m = linear();
             Loss loss = Loss.custom("returner", (out, targets, r) -> result);
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(x()).loss(loss).build()) {
            check.run(Engines.microbatch());
        }
    }

    private static Path tempFile(String prefix) {
        try {
            Path file = Files.createTempFile(prefix, ".pt");
            file.toFile().deleteOnExit();
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Path tempDir() {
        try {
            Path folder = Files.createTempDirectory("psg4j-bad");
            folder.toFile().deleteOnExit();
            return folder;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Arguments bad(String what, Executable call, String mentions) {
        return Arguments.of(what, call, BadInputException.class, mentions);
    }

    private static Arguments failed(String what, Executable call, String mentions) {
        return Arguments.of(what, call, ModelExecutionException.class, mentions);
    }

    private static Arguments illegalState(String what, Executable call, String mentions) {
        return Arguments.of(what, call, IllegalStateException.class, mentions);
    }

    static Stream<Arguments> badInputs() {
        return Stream.of(
                // The builder's arguments.
                bad("model(null)", () -> PerSampleCheck.builder().model(null), "model is null: pass the model"),
                bad("no model", () -> PerSampleCheck.builder().inputs(x()).build(), "model is null"),
                bad("no inputs", () -> {
                    try (Model m = linear()) {
                        PerSampleCheck.builder().model(m).build();
                    }
                }, "no inputs"),
                bad("inputs((Tensor[]) null)", () -> PerSampleCheck.builder().inputs((Tensor[]) null), "inputs is null"),
                bad("inputs((List) null)", () -> PerSampleCheck.builder().inputs((List<Tensor>) null), "inputs is null"),
                bad("inputs(x, null)", () -> PerSampleCheck.builder().inputs(x(), null), "input 1 is null: pass a tensor"),
                bad("inputs(list holding null)", () -> PerSampleCheck.builder().inputs(Arrays.asList(null, x())),
                        "input 0 is null"),
                bad("inputs(closed tensor)", () -> PerSampleCheck.builder().inputs(closed()),
                        "input 0 was freed (closed)"),
                bad("input closed between inputs() and build()", () -> {
                    Tensor t = x();
                    try (Model m = linear()) {
                        PerSampleCheck.Builder builder = PerSampleCheck.builder().model(m).inputs(x(), t);
                        t.close();
                        builder.build();
                    }
                }, "input 1 was freed (closed)"),
                bad("undefined input", () -> {
                    try (Model m = linear()) {
                        PerSampleCheck.builder().model(m).inputs(new Tensor()).build();
                    }
                }, "input 0 is an undefined tensor"),
                bad("targets((Tensor[]) null)", () -> PerSampleCheck.builder().targets((Tensor[]) null),
                        "targets is null"),
                bad("targets(null element)", () -> PerSampleCheck.builder().targets(new Tensor[] {null}),
                        "target 0 is null"),
                bad("loss(null)", () -> PerSampleCheck.builder().loss(null), "loss is null: pass Loss.L1"),
                bad("reduction(null)", () -> PerSampleCheck.builder().reduction(null),
                        "reduction is null: pass Reduction.SUM or Reduction.MEAN"),
                bad("reductions()", () -> PerSampleCheck.builder().reductions(), "at least one reduction"),
                bad("reductions(SUM, null)", () -> PerSampleCheck.builder().reductions(Reduction.SUM, null),
                        "reduction 1 is null"),
                bad("threads(0)", () -> PerSampleCheck.builder().threads(0), "threads must be between 1 and"),
                bad("threads(100000)", () -> PerSampleCheck.builder().threads(100_000), "got 100000"),
                bad("threads(Integer.MAX_VALUE)", () -> PerSampleCheck.builder().threads(Integer.MAX_VALUE),
                        "available processors"),
                bad("bench threads(100000)", () -> Bench.builder().threads(100_000), "threads must be between 1 and"),
                bad("tolerance NaN", () -> PerSampleCheck.builder().tolerance(Double.NaN, 1e-4), "atol=NaN"),
                bad("tolerance Inf", () -> PerSampleCheck.builder().tolerance(1e-5, Double.POSITIVE_INFINITY),
                        "rtol=Infinity"),
                // The batch.
                bad("empty batch", () -> {
                    try (Model m = linear()) {
                        PerSampleCheck.builder().model(m).inputs(torch.zeros(0, 4)).build();
                    }
                }, "the batch is empty"),
                bad("batchDim(2) of a 2-d input", () -> {
                    try (Model m = linear()) {
                        PerSampleCheck.builder().model(m).inputs(x()).batchDim(2).build();
                    }
                }, "batch dimension 2 is out of range"),
                bad("inputs of batch sizes 3 and 5", () -> {
                    try (Model m = linear()) {
                        PerSampleCheck.builder().model(m).inputs(x(), torch.zeros(5, 4)).build();
                    }
                }, "input 1 has batch size 5"),
                bad("targets of batch size 4", () -> {
                    try (Model m = linear()) {
                        PerSampleCheck.builder().model(m).inputs(x()).targets(torch.zeros(4, 2)).build();
                    }
                }, "target 0 has batch size 4"),
                bad("sparse input", () -> {
                    try (Model m = linear()) {
                        PerSampleCheck.builder().model(m).inputs(x().to_sparse()).build();
                    }
                }, "input 0 is a sparse tensor"),
                bad("Batch.of(null)", () -> Batch.of((Tensor) null), "input 0 is null"),
                // Running.
                bad("run(null)", () -> {
                    try (Model m = linear(); PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(x()).build()) {
                        check.run(null);
                    }
                }, "sampler is null: pass a GradSampler"),
                illegalState("run() after close()", () -> {
                    try (Model m = linear()) {
                        PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(x()).build();
                        check.close();
                        check.run(Engines.microbatch());
                    }
                }, "this PerSampleCheck is closed"),
                illegalState("run() with a closed model", () -> {
                    Model m = linear();
                    try (PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(x()).build()) {
                        m.close();
                        check.run(Engines.microbatch());
                    }
                }, "this Model is closed"),
                // Losses and targets.
                bad("cross_entropy without targets", () -> {
                    try (Model m = linear();
                         PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(x()).loss(Loss.CROSS_ENTROPY)
                                 .build()) {
                        check.run(Engines.microbatch());
                    }
                }, "needs exactly one target"),
                bad("class 5 of 2, vmap", () -> crossEntropy(Engines.vmap(), torch.tensor(0L, 5L, 1L)),
                        "sample 1's cross_entropy target is 5, not a class index of the model's 2 classes"),
                bad("class 5 of 2, vmap chunks of 1", () -> crossEntropy(Engines.vmap().chunkSize(1),
                        torch.tensor(0L, 1L, 5L)), "sample 2's cross_entropy target is 5"),
                bad("class 5 of 2 in a chunk's last sample, the vmap engine alone", () -> {
                    try (Model m = linear();
                         Batch batch = new Batch(List.of(x()), List.of(torch.tensor(0L, 1L, 5L)), 0, 0)) {
                        Engines.vmap().chunkSize(3).perSampleGradients(m, batch, Loss.CROSS_ENTROPY, Reduction.SUM);
                    }
                }, "sample 2's cross_entropy target is 5"),
                bad("class 5 of 2, microbatch", () -> crossEntropy(Engines.microbatch(),
                        torch.tensor(0L, 5L, 1L)), "sample 1's cross_entropy target is 5"),
                bad("class -2, microbatch", () -> crossEntropy(Engines.microbatch(),
                        torch.tensor(-2L, 0L, 1L)), "sample 0's cross_entropy target is -2"),
                bad("class 2 of 2 (one past the end)", () -> crossEntropy(Engines.vmap(),
                        torch.tensor(0L, 1L, 2L)), "give class indices in [0, 2)"),
                bad("float class targets", () -> crossEntropy(Engines.vmap(), torch.tensor(0f, 1f, 1f)),
                        "class-index targets (an integer tensor), got dtype Float"),
                bad("class targets shaped [3, 1]", () -> crossEntropy(Engines.microbatch(),
                        torch.zeros(3, 1).to(torch.kLong())), "takes targets of shape [1]"),
                bad("mse target shaped [3]", () -> mse(Engines.vmap(), torch.zeros(3)),
                        "the mse target has shape [1] but the model's output has shape [1, 2] (for one sample)"),
                bad("mse integer target", () -> mse(Engines.microbatch(), torch.zeros(3, 2).to(torch.kLong())),
                        "the mse target has dtype Long"),
                // Candidates.
                bad("integer candidate", () -> candidate(referenceWith("fc.weight", g -> g.to(torch.kLong()))),
                        "per-sample gradients must be floating-point tensors"),
                bad("sparse candidate", () -> candidate(referenceWith("fc.weight", Tensor::to_sparse)),
                        "candidate gradient 'fc.weight' is a sparse tensor"),
                bad("closed candidate tensor", () -> candidate(referenceWith("fc.bias", g -> closed())),
                        "candidate gradient 'fc.bias' was freed (closed)"),
                bad("null candidate tensor", () -> candidate(referenceWith("fc.weight", g -> null)),
                        "candidate gradient 'fc.weight' is null: pass a tensor"),
                bad("candidate for the other reduction", () -> {
                    try (Model m = linear(); PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(x()).build()) {
                        check.run(Engines.precomputed("sum-only", Reduction.SUM, referenceWith("fc.bias", g -> g)));
                    }
                }, "reduction sum only"),
                bad("precomputed(null reduction)", () -> Engines.precomputed("c", null, Map.of()), "reduction is null"),
                bad("precomputed(null gradients)", () -> Engines.precomputed("c", Reduction.SUM, null),
                        "gradients is null"),
                bad("vmap randomness(null)", () -> Engines.vmap().randomness(null), "randomness is null"),
                bad("vmap chunkSize(-1)", () -> Engines.vmap().chunkSize(-1), "chunk size must be positive"),
                // Models.
                bad("Models.torchScript((JitModule) null)", () -> Models.torchScript((JitModule) null),
                        "module is null"),
                bad("Models.torchScript((Path) null)", () -> Models.torchScript((Path) null), "file is null"),
                bad("Models.torchScript(missing file)", () -> Models.torchScript(Path.of("no/such/model.pt")),
                        "does not exist"),
                bad("Models.torchScript(directory)", () -> Models.torchScript(tempDir()), "is a directory, not a file"),
                bad("Models.torchScript(corrupt.pt)", () -> Models.torchScript(Fixtures.root().resolve("corrupt.pt")),
                        "cannot load"),
                bad("Models.torchScript(tensor_only.pt)", () -> Models.torchScript(
                        Fixtures.root().resolve("tensor_only.pt")), "not torch.save"),
                bad("Models.module(null)", () -> Models.module(null), "module is null"),
                bad("Models.function(null parameters)", () -> Models.function("f", null, (in, p) -> in.get(0)),
                        "parameters is null"),
                bad("Models.function(null forward)", () -> Models.function("f", weight(), null), "forward is null"),
                bad("Models.function(no parameters)", () -> Models.function("f", Map.of(), (in, p) -> in.get(0)),
                        "at least one parameter"),
                bad("Models.function(null parameter value)", () -> {
                    Map<String, Tensor> params = new HashMap<>();
                    params.put("w", null);
                    Models.function("f", params, (in, p) -> in.get(0));
                }, "parameter 'w' of f is null"),
                bad("Models.function(undefined parameter)", () -> Models.function("f", Map.of("w", new Tensor()),
                        (in, p) -> in.get(0)), "undefined tensor"),
                bad("Models.function(closed parameter)", () -> Models.function("f", Map.of("w", closed()),
                        (in, p) -> in.get(0)), "parameter 0 was freed (closed)"),
                failed("forward returns a closed tensor", () -> forwardReturning(closed()),
                        "the forward of returner returned a closed (freed) tensor: return a live tensor"),
                failed("forward returns null", () -> forwardReturning(null), "the forward of returner returned null"),
                failed("forward returns an undefined tensor", () -> forwardReturning(new Tensor()),
                        "returned an undefined tensor"),
                failed("custom loss returns a closed tensor", () -> customLossReturning(closed()),
                        "the custom loss 'returner' returned a closed (freed) tensor"),
                failed("custom loss returns a vector", () -> customLossReturning(torch.ones(3)),
                        "must return a scalar tensor"),
                failed("float64 input for a float32 model", () -> {
                    try (Model m = linear();
                         PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(x().to(torch.kDouble()))
                                 .probes(false).build()) {
                        check.run(Engines.microbatch());
                    }
                }, "Double and Float"),
                failed("TorchScript shape error: the op's own message first", () -> {
                    try (Model m = Models.torchScript(Fixtures.file("mlp", "model.pt"));
                         PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(torch.ones(6, 7))
                                 .probes(false).build()) {
                        check.run(Engines.microbatch());
                    }
                }, "on sample 0 failed: RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x7 and 8x16)"),
                bad("Loss.custom(null name)", () -> Loss.custom(null, (o, t, r) -> o.sum()), "name is null"),
                bad("Loss.named(null)", () -> Loss.named(null), "name is null"),
                // Files.
                bad("TensorMaps.read(null)", () -> TensorMaps.read(null), "file is null"),
                bad("TensorMaps.read(missing)", () -> TensorMaps.read(Path.of("no/such/x.pt")),
                        "no/such/x.pt does not exist"),
                bad("TensorMaps.read(corrupt.pt)", () -> TensorMaps.read(Fixtures.root().resolve("corrupt.pt")),
                        "cannot read"),
                bad("TensorMaps.read(directory)", () -> TensorMaps.read(tempDir()), "is a directory"),
                bad("TensorMaps.read(empty file)", () -> TensorMaps.read(tempFile("empty")), "is empty"),
                bad("TensorMaps.read(a named pipe)", () -> TensorMaps.read(BadFiles.fifo(tempDir(), "x.pt")),
                        "is a named pipe (FIFO), not a regular file"),
                bad("TensorMaps.read(/dev/zero)", () -> TensorMaps.read(Path.of("/dev/zero")),
                        "/dev/zero is a character device, not a regular file"),
                bad("TensorMaps.read(a symbolic link loop)", () -> TensorMaps.read(BadFiles.symlinkLoop(tempDir(),
                        "x.pt")), "is a symbolic link loop"),
                bad("TensorMaps.read(1 TiB)", () -> TensorMaps.read(BadFiles.sparse(tempDir(), "x.pt", 1L << 40)),
                        "is 1.0 TiB, more than the"),
                bad("TensorMaps.read(a meta-device tensor)", () -> TensorMaps.read(BadFiles.metaTensor(tempDir(),
                        "x.pt", true)), "holds a tensor on the meta device, which has a shape but no data"),
                bad("Models.torchScript(a named pipe)", () -> Models.torchScript(BadFiles.fifo(tempDir(), "m.pt")),
                        "is a named pipe (FIFO), not a regular file"),
                bad("Models.torchScript(/dev/null)", () -> Models.torchScript(Path.of("/dev/null")),
                        "model file /dev/null is a character device, not a regular file"),
                bad("GradSamplers.withPlugins(a named pipe)", () -> GradSamplers.withPlugins(List.of(
                        BadFiles.fifo(tempDir(), "p.jar"))), "is a named pipe (FIFO)"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badInputs")
    @Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void throwsTypedNamingTheCause(String what, Executable call, Class<? extends Throwable> type, String mentions) {
        Throwable e = assertThrows(type, call);
        assertFalse(e instanceof UnsupportedModelException, () -> "blames the engine: " + e);
        String first = e.getMessage().lines().findFirst().orElse("");
        assertTrue(first.contains(mentions), () -> "'" + mentions + "' not in the first line of: " + e.getMessage());
        assertFalse(first.contains("Pointer address") || first.contains("The following operation failed"), first);
    }

    // Unusual input answered without an exception of psg4j's: the caller's own exception, a
    // failing report, or a check that simply works.

    @Test
    void javaForwardThatThrowsIsRethrownAsItself() {
        Tensor w = torch.ones(2, 4).requires_grad_(true);
        IllegalStateException boom = new IllegalStateException("boom in forward");
        try (Model m = Models.function("throwing", Map.of("w", w), (in, p) -> {
                 throw boom;
             });
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(torch.ones(3, 4)).build()) {
            assertSame(boom, assertThrows(IllegalStateException.class, () -> check.run(Engines.microbatch())));
        }
    }

    @Test
    void nonFiniteModelGradientIsAFailingReport() {
        Tensor w = torch.ones(2, 4).requires_grad_(true);
        // sqrt at 0 has an infinite derivative: the reference itself is not finite.
        try (Model m = Models.function("sqrt", Map.of("w", w), (in, p) -> torch.sqrt(torch.matmul(in.get(0), p.get("w").t())));
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(torch.zeros(3, 4)).reduction(Reduction.SUM)
                     .build()) {
            CheckReport report = check.run(Engines.microbatch());
            assertFalse(report.passed());
            assertTrue(report.failures().stream().allMatch(f -> f.kind() == FailureKind.NON_FINITE));
            assertTrue(report.failures().get(0).message().contains("reference gradient itself"));
        }
    }

    @Test
    void batchOfOne() {
        try (Model m = linear();
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(torch.ones(1, 4)).build()) {
            CheckReport report = check.run(Engines.microbatch());
            assertTrue(report.passed());
            assertEquals(1, report.batchSize());
            assertEquals(List.of(1L, 2L, 4L), report.reductions().get(0).params().get(0).shape());
        }
    }

    /** The built check holds its own references: closing the caller's tensors changes nothing. */
    @Test
    void closingTheCallersTensorsAfterBuildChangesNothing() {
        Tensor x = torch.randn(3, 4);
        Tensor y = torch.randn(3, 2);
        try (Model m = linear();
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(x).targets(y).loss(Loss.MSE).build()) {
            x.close();
            y.close();
            assertEquals("cpu", check.batch().device());
            CheckReport vmap = check.run(Engines.vmap());
            assertTrue(vmap.passed(), vmap::summary);
            assertTrue(check.run(Engines.microbatch()).passed());
            assertEquals(3, check.batch().inputs().get(0).size(0));
        }
    }

    /** A class index of ignore_index (-100) leaves the sample out of the loss: a zero gradient, not an error. */
    @Test
    void ignoreIndexIsAValidClassIndex() {
        try (Model m = linear();
             PerSampleCheck check = PerSampleCheck.builder().model(m).inputs(torch.randn(3, 4))
                     .targets(torch.tensor(0L, -100L, 1L)).loss(Loss.CROSS_ENTROPY).reduction(Reduction.SUM).build()) {
            CheckReport report = check.run(Engines.vmap());
            assertTrue(report.passed(), report::summary);
        }
    }
}
