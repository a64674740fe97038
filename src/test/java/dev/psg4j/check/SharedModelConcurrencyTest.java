package dev.psg4j.check;

import dev.psg4j.Fixtures;
import dev.psg4j.bench.Suite;
import dev.psg4j.engine.Engines;
import dev.psg4j.engine.TensorMaps;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.ParamReport;

import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.IValueVector;
import org.bytedeco.pytorch.JitModule;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A Model shared by threads and engines gives exactly the single-threaded verdicts: 4 threads ×
 * 250 mixed checks (vmap, microbatch, precomputed good and bad candidates) on one Model, every
 * max_abs_err compared bit for bit with a single-threaded run, while the caller's own thread runs
 * the caller's module and must never see another parameter.
 */
class SharedModelConcurrencyTest {
    private static final int THREADS = 4;
    private static final int CHECKS_PER_THREAD = 250;

    /**
     * What must not change: the verdict and every parameter's max_abs_err, per reduction, and in
     * sketch mode its zone and residual ratio (max_abs_err is null where the sketch passed it).
     */
    private record Fingerprint(boolean passed, List<Double> maxAbsErrors, List<String> sketch) {
        static Fingerprint of(CheckReport report) {
            List<Double> errors = new ArrayList<>();
            List<String> sketch = new ArrayList<>();
            report.reductions().forEach(r -> r.params().forEach(p -> {
                errors.add(p.maxAbsErr());
                sketch.add(p.sketchZone() + " " + p.sketchResidualRatio());
            }));
            return new Fingerprint(report.passed(), errors, sketch);
        }
    }

    private static final class Workload {
        final Model model;
        final List<Tensor> inputs;
        final List<Tensor> targets;
        final Loss loss;
        final List<GradSampler> samplers;
        final UnaryOperator<PerSampleCheck.Builder> mode;

        Workload(Model model, List<Tensor> inputs, List<Tensor> targets, Loss loss, List<GradSampler> samplers) {
            this(model, inputs, targets, loss, samplers, UnaryOperator.identity());
        }

        Workload(Model model, List<Tensor> inputs, List<Tensor> targets, Loss loss, List<GradSampler> samplers,
                 UnaryOperator<PerSampleCheck.Builder> mode) {
            this.model = model;
            this.inputs = inputs;
            this.targets = targets;
            this.loss = loss;
            this.samplers = samplers;
            this.mode = mode;
        }

        Fingerprint check(int k) {
            // One intra-op thread: the same kernels, so the same roundings, in every thread.
            try (PerSampleCheck check = mode.apply(PerSampleCheck.builder()).model(model).inputs(inputs).targets(targets)
                    .loss(loss).reduction(Reduction.SUM).threads(1).build()) {
                return Fingerprint.of(check.run(samplers.get(k % samplers.size())));
            }
        }
    }

    /**
     * Runs every check of the workload single-threaded, then concurrently; returns how many differ
     * (and prints, per sampler, how many ran and how many differed).
     */
    private static int differingVerdicts(Workload work, int threads, int checksPerThread, Runnable alongside)
            throws Exception {
        int[] ran = new int[work.samplers.size()];
        AtomicInteger[] differed = new AtomicInteger[work.samplers.size()];
        java.util.Arrays.setAll(differed, k -> new AtomicInteger());
        List<Fingerprint> expected = new ArrayList<>();
        for (int k = 0; k < work.samplers.size(); k++) {
            expected.add(work.check(k));
        }
        assertTrue(expected.get(0).passed() && !expected.get(expected.size() - 1).passed(),
                "the workload mixes passing and failing checks: " + expected);
        AtomicInteger differing = new AtomicInteger();
        AtomicBoolean running = new AtomicBoolean(true);
        ExecutorService pool = Executors.newFixedThreadPool(threads + 1);
        try {
            Future<?> user = pool.submit(() -> {
                while (running.get()) {
                    alongside.run();
                }
            });
            List<Future<?>> workers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int offset = t;
                workers.add(pool.submit(() -> {
                    for (int k = 0; k < checksPerThread; k++) {
                        int which = (k + offset) % work.samplers.size();
                        synchronized (ran) {
                            ran[which]++;
                        }
                        if (!work.check(which).equals(expected.get(which))) {
                            differing.incrementAndGet();
                            differed[which].incrementAndGet();
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> w : workers) {
                w.get(10, TimeUnit.MINUTES);
            }
            running.set(false);
            user.get(1, TimeUnit.MINUTES);
            for (int k = 0; k < ran.length; k++) {
                System.out.printf("shared model, %d threads: %-12s %4d checks, %d differ from one thread%n", threads,
                        work.samplers.get(k).name(), ran[k], differed[k].get());
            }
        } finally {
            running.set(false);
            pool.shutdownNow();
        }
        return differing.get();
    }

    @Test
    void aTorchScriptModelSharedByFourThreadsGivesTheSingleThreadedVerdictsAndNeverSwapsTheCallersModule()
            throws Exception {
        torch.set_num_threads(1);
        List<Tensor> x = new ArrayList<>(TensorMaps.load(Fixtures.file("mlp", "x.pt")).values());
        List<Tensor> y = new ArrayList<>(TensorMaps.load(Fixtures.file("mlp", "y.pt")).values());
        try (JitModule callers = Models.loadTorchScript(Fixtures.file("mlp", "model.pt"));
             Model model = Models.torchScript(callers)) {
            List<GradSampler> samplers = List.of(Engines.vmap(), Engines.microbatch(),
                    Engines.precomputed("func", Reduction.SUM, TensorMaps.load(Fixtures.file("mlp", "grads_func_sum.pt"))),
                    Engines.precomputed("swapped", Reduction.SUM, TensorMaps.load(Fixtures.file("mlp", "bug_swapped.pt"))));
            Tensor before = forward(callers, x.get(0));
            AtomicInteger changed = new AtomicInteger();
            Runnable callersOwnForward = () -> {
                if (!torch.equal(forward(callers, x.get(0)), before)) {
                    changed.incrementAndGet();
                }
            };
            int differing = differingVerdicts(new Workload(model, x, y, Loss.CROSS_ENTROPY, samplers), THREADS,
                    CHECKS_PER_THREAD, callersOwnForward);
            assertEquals(0, differing, "verdicts of " + THREADS * CHECKS_PER_THREAD + " shared-model checks that differ");
            assertEquals(0, changed.get(), "forwards of the caller's module that saw other parameters");
        }
    }

    /**
     * Sketch checks of a shared Model, projected in double and in float first (fixed weights): every
     * zone, residual ratio and max_abs_err bit for bit as one thread gives them, clean and swapped
     * candidates, the caller's module running alongside.
     */
    @Test
    void sketchChecksOfASharedModelGiveTheSingleThreadedReportsBitForBit() throws Exception {
        torch.set_num_threads(1);
        List<Tensor> x = new ArrayList<>(TensorMaps.load(Fixtures.file("mlp", "x.pt")).values());
        List<Tensor> y = new ArrayList<>(TensorMaps.load(Fixtures.file("mlp", "y.pt")).values());
        try (JitModule callers = Models.loadTorchScript(Fixtures.file("mlp", "model.pt"));
             Model model = Models.torchScript(callers)) {
            List<GradSampler> samplers = List.of(Engines.vmap(),
                    Engines.precomputed("func", Reduction.SUM, TensorMaps.load(Fixtures.file("mlp", "grads_func_sum.pt"))),
                    Engines.precomputed("swapped", Reduction.SUM, TensorMaps.load(Fixtures.file("mlp", "bug_swapped.pt"))));
            for (SketchPrecision precision : SketchPrecision.values()) {
                Workload sketch = new Workload(model, x, y, Loss.CROSS_ENTROPY, samplers,
                        b -> b.mode(CheckMode.SKETCH).sketchPrecision(precision).seed(11));
                Tensor before = forward(callers, x.get(0));
                AtomicInteger changed = new AtomicInteger();
                int differing = differingVerdicts(sketch, THREADS, 50, () -> {
                    if (!torch.equal(forward(callers, x.get(0)), before)) {
                        changed.incrementAndGet();
                    }
                });
                assertEquals(0, differing, precision + ": sketch reports of shared-model checks that differ");
                assertEquals(0, changed.get(), precision + ": forwards of the caller's module that saw other parameters");
            }
        }
    }

    @Test
    void aJavaBuiltModelSharedByFourThreadsGivesTheSingleThreadedVerdicts() throws Exception {
        torch.set_num_threads(1);
        torch.manual_seed(7);
        try (Suite mlp = Suite.build("mlp", 8)) {
            Model model = mlp.model();
            List<Tensor> x = List.of(mlp.input());
            GradSampler broken = dev.psg4j.cli.demo.Sabotage.perturb(Engines.vmap(), "0.weight", 3, 1e-2);
            List<GradSampler> samplers = List.of(Engines.vmap(), Engines.microbatch(), Engines.vmap().chunkSize(3), broken);
            int differing = differingVerdicts(new Workload(model, x, List.of(), Loss.L1, samplers), THREADS, 25, () -> { });
            assertEquals(0, differing);
        }
    }

    /**
     * The caller's nested modules stay the caller's: a Sequential inside a Sequential, four levels
     * deep with parameters at each, shared by 4 threads, gives the single-threaded verdicts bit for
     * bit, while the caller's own thread runs its module and reads every layer's parameter members
     * (what a forward of any of them reads), which must stay the caller's tensors throughout.
     * bytedeco's Sequential takes no Sequential as an entry (LibTorch's AnyModule cannot hold one),
     * so the nested ones are registered submodules, as a Java-built model keeps a head or a branch
     * beside its sequence: "inner", a Sequential with a Linear of its own, holds "block", a
     * container built in Java, which holds "deepest", a Sequential with a Linear and "fc1" once more
     * (a module used twice: one parameter with an alias). The engines swap every trainable
     * parameter, these included, into their replica.
     */
    @Test
    void aNestedSequentialSharedByFourThreadsGivesTheSingleThreadedVerdictsAndStaysTheCallers() throws Exception {
        torch.set_num_threads(1);
        torch.manual_seed(5);
        org.bytedeco.pytorch.SequentialImpl outer = new org.bytedeco.pytorch.SequentialImpl();
        LinearImpl fc0 = new LinearImpl(6, 8);
        LinearImpl fc1 = new LinearImpl(8, 3);
        outer.push_back("fc0", fc0);
        outer.push_back("act", new org.bytedeco.pytorch.TanhImpl());
        outer.push_back("fc1", fc1);
        org.bytedeco.pytorch.SequentialImpl inner = new org.bytedeco.pytorch.SequentialImpl();
        LinearImpl innerFc = new LinearImpl(3, 3);
        inner.push_back("fc", innerFc);
        org.bytedeco.pytorch.Module block = new org.bytedeco.pytorch.Module("block");
        org.bytedeco.pytorch.SequentialImpl deepest = new org.bytedeco.pytorch.SequentialImpl();
        LinearImpl deepestFc = new LinearImpl(3, 3);
        deepest.push_back("fc", deepestFc);
        deepest.register_module("fc1", fc1);
        block.register_module("deepest", deepest);
        inner.register_module("block", block);
        outer.register_module("inner", inner);
        List<LinearImpl> layers = List.of(fc0, fc1, innerFc, deepestFc);
        Tensor x = torch.randn(8, 6);
        try (Model model = Models.module(outer); Batch batch = Batch.of(x)) {
            assertEquals(List.of("fc0.weight", "fc0.bias", "fc1.weight", "fc1.bias", "inner.fc.weight", "inner.fc.bias",
                    "inner.block.deepest.fc.weight", "inner.block.deepest.fc.bias"),
                    List.copyOf(model.trainableParameters().keySet()));
            Map<String, Tensor> good = Engines.microbatch().perSampleGradients(model, batch, Loss.L1, Reduction.SUM);
            GradSampler goodFile = Engines.precomputed("good", Reduction.SUM, good);
            List<GradSampler> samplers = List.of(Engines.vmap(), Engines.microbatch(), Engines.vmap().chunkSize(3),
                    goodFile, dev.psg4j.cli.demo.Sabotage.perturb(goodFile, "inner.block.deepest.fc.weight", 3, 1e-2));
            long[] members = members(layers);
            Tensor before = outer.forward(x);
            AtomicInteger changed = new AtomicInteger();
            Runnable callersOwnForward = () -> {
                if (!java.util.Arrays.equals(members(layers), members)) {
                    changed.incrementAndGet();  // not run: a forward on an engine's wrapped tensor may crash
                } else if (!torch.equal(outer.forward(x), before)) {
                    changed.incrementAndGet();
                }
            };
            int differing = differingVerdicts(new Workload(model, List.of(x), List.of(), Loss.L1, samplers), THREADS,
                    25, callersOwnForward);
            assertEquals(0, differing, "verdicts of " + THREADS * 25 + " shared-model checks that differ");
            assertEquals(0, changed.get(), "reads of the caller's layers that saw other parameters");
        }
    }

    /** The TensorImpl addresses in each layer's weight and bias members: read, never referenced. */
    private static long[] members(List<LinearImpl> layers) {
        long[] out = new long[2 * layers.size()];
        for (int k = 0; k < layers.size(); k++) {
            out[2 * k] = layers.get(k).weight().unsafeGetTensorImpl().address();
            out[2 * k + 1] = layers.get(k).bias().unsafeGetTensorImpl().address();
        }
        return out;
    }

    @Test
    void aCheckLeavesTheThreadCountAndTheRandomStreamAsItFoundThem() {
        int threads = torch.get_num_threads();
        // Several reference workers, each making its replica of a new Java-built model at once:
        // cloning re-initializes layers randomly on every worker thread together.
        int checkThreads = threads == 4 ? 3 : 4;
        org.bytedeco.pytorch.SequentialImpl seq = new org.bytedeco.pytorch.SequentialImpl();
        seq.push_back("fc", new org.bytedeco.pytorch.LinearImpl(784, 10));
        for (int round = 0; round < 5; round++) {
            try (Suite mlp = Suite.build("mlp", 8)) {
                torch.manual_seed(11);
                Tensor expected = torch.randn(4);
                torch.manual_seed(11);
                // A new Model clones the layers and checks run the probes and both engines: none
                // of it may move the caller's random stream.
                try (Model fresh = Models.module(seq);
                     PerSampleCheck check = PerSampleCheck.builder().model(mlp.model()).inputs(mlp.input())
                             .threads(checkThreads).build()) {
                    assertFalse(fresh.trainableParameters().isEmpty());
                    assertTrue(check.run(Engines.vmap()).passed());
                    assertTrue(check.run(Engines.microbatch()).passed());
                }
                assertEquals(threads, torch.get_num_threads(), "intra-op threads after a check with threads(n)");
                assertTrue(torch.equal(torch.randn(4), expected), "the default generator moved (round " + round + ")");
            }
        }
    }

    private static Tensor forward(JitModule module, Tensor x) {
        // toTensor() refers into the IValue: copy the handle out before the IValue is freed.
        try (IValue input = new IValue(x); IValueVector args = new IValueVector(input); IValue out = module.forward(args)) {
            return new Tensor(out.toTensor());
        }
    }
}
