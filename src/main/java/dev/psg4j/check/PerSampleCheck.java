package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.bridge.CloseGuard;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.NativeCore.ComparisonList;
import dev.psg4j.bridge.NativeCore.ComparisonView;
import dev.psg4j.bridge.NativeCore.NamedTensorList;
import dev.psg4j.bridge.NativeCore.NativeLoss;
import dev.psg4j.bridge.NativeCore.ReductionCandidates;
import dev.psg4j.bridge.Natives;
import dev.psg4j.model.Model;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.Failure;
import dev.psg4j.report.ReductionReport;

import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * Verifies a {@link GradSampler}'s per-sample gradients against the microbatch reference, for each
 * reduction asked (both by default). The reference streams sample by sample into the comparison,
 * so a check costs the candidate's memory plus O(|θ|) per thread.
 *
 * <p>Ownership: the check owns its batch (built from the inputs and targets given, which stay the
 * caller's) and frees it on {@link #close}; it does not own the {@link Model}. It owns each
 * gradient map its sampler returns and closes those tensors once compared. A check may be shared
 * by threads: {@link #run} calls may overlap (on a shared Model too) and give the same reports as
 * one thread would; {@link #close} waits for running ones, and a run after close throws
 * IllegalStateException. Nothing process-wide is left changed: a {@link Builder#threads} count is
 * set for the run's duration and the previous one restored.
 *
 * <pre>{@code
 * try (PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(x).build()) {
 *     CheckReport report = check.run(mySampler);
 * }
 * }</pre>
 */
public final class PerSampleCheck implements AutoCloseable {
    private final Model model;
    private final Batch batch;
    private final Loss loss;
    private final List<Reduction> reductions;
    private final Tolerance tolerance;
    private final boolean probes;
    private final int threads;
    private final CloseGuard guard = new CloseGuard("PerSampleCheck");
    private final int probeSamples;

    private PerSampleCheck(Builder b) {
        this.model = BadInputException.requireNonNull(b.model, "model", Builder.A_MODEL);
        if (b.inputs.isEmpty()) {
            throw new BadInputException("no inputs: give the batch with inputs(x) (several tensors for multi-input models)");
        }
        this.batch = new Batch(b.inputs, b.targets, b.batchDim, b.targetBatchDim == null ? b.batchDim : b.targetBatchDim);
        this.loss = b.loss;
        this.reductions = List.copyOf(b.reductions);
        this.tolerance = b.tolerance;
        this.probes = b.probes;
        this.threads = b.threads;
        this.probeSamples = b.probeSamples;
    }

    public static Builder builder() {
        return new Builder();
    }

    public Model model() {
        return model;
    }

    public Batch batch() {
        return batch;
    }

    public Loss loss() {
        return loss;
    }

    public List<Reduction> reductions() {
        return reductions;
    }

    public Tolerance tolerance() {
        return tolerance;
    }

    /**
     * Probes the model (determinism, batch independence; see {@link Probes}) unless turned off,
     * then runs {@code sampler} for each reduction and compares its output with the reference. The
     * check fails on a mismatch, and on a probe's finding without comparing anything: a
     * batch-mixing or non-deterministic model has no per-sample gradients to verify.
     */
    public CheckReport run(GradSampler sampler) {
        BadInputException.requireNonNull(sampler, "sampler", "a GradSampler (Engines.vmap(), Engines.microbatch(), "
                + "Engines.precomputed(...) or your own)");
        try (CloseGuard.Use use = guard.use(); CloseGuard.Use modelUse = model.use();
             IntraOpThreads scope = IntraOpThreads.set(threads)) {
            return runProbedCheck(sampler);
        }
    }

    private CheckReport runProbedCheck(GradSampler sampler) {
        List<Diagnosis> diagnoses = probes ? Probes.diagnose(model, batch, probeSamples) : List.of();
        if (!diagnoses.isEmpty()) {
            // Nothing to compare: the reference's one-sample batches would not be the model's
            // (and BatchNorm in train mode cannot even run one sample).
            return new CheckReport(false, sampler.name(), batch.size(), batch.device(), loss.name(), tolerance.atol(),
                    tolerance.rtol(), List.of(), List.of(), diagnoses);
        }
        List<Failure> failures = new ArrayList<>();
        Map<Reduction, Map<String, Tensor>> candidates = new LinkedHashMap<>();
        try {
            for (Reduction reduction : reductions) {
                candidates.put(reduction, candidateOf(sampler, reduction));
            }
            List<ReductionReport> reports = compareExact(candidates, failures);
            boolean passed = reports.stream().allMatch(ReductionReport::passed) && diagnoses.isEmpty();
            return new CheckReport(passed, sampler.name(), batch.size(), batch.device(), loss.name(), tolerance.atol(),
                    tolerance.rtol(), reports, failures, diagnoses);
        } finally {
            candidates.values().forEach(Natives::closeAll);  // the check owns what a sampler returns
        }
    }

    private Map<String, Tensor> candidateOf(GradSampler sampler, Reduction reduction) {
        Map<String, Tensor> candidate = sampler.perSampleGradients(model, batch, loss, reduction);
        if (candidate == null) {
            throw new BadInputException("grad sampler '" + sampler.name() + "' returned null for reduction "
                    + reduction.label() + ": return a map {parameter name: Tensor[B, *shape]}");
        }
        return candidate;
    }

    /**
     * The exact check of every reduction's candidate in one native call: the reference streams once,
     * one sum backward per sample serving both reductions where the loss makes that exact, over
     * {@link Builder#threads} sample workers. Reports and failures come in the candidates' order.
     */
    private List<ReductionReport> compareExact(Map<Reduction, Map<String, Tensor>> candidates, List<Failure> failures) {
        List<NamedTensorList> lists = new ArrayList<>();
        try (NativeLoss lossHandle = loss.newHandle(); ReductionCandidates natives = new ReductionCandidates()) {
            for (Map.Entry<Reduction, Map<String, Tensor>> entry : candidates.entrySet()) {
                NamedTensorList list = Natives.namedList(entry.getValue(), "candidate gradient");
                lists.add(list);
                natives.add(entry.getKey().code(), list);
            }
            try (ComparisonList comparisons = Natives.call(List.of(model.callbackFailure(), loss.callbackFailure()),
                    () -> NativeCore.compare_reductions(model.handle(), batch.handle(), lossHandle, natives,
                            tolerance.atol(), tolerance.rtol(), threads))) {
                List<ReductionReport> reports = new ArrayList<>();
                long k = 0;
                for (Reduction reduction : candidates.keySet()) {
                    try (ComparisonView view = comparisons.get(k++)) {
                        reports.add(Verdicts.read(view, reduction, failures));
                    }
                }
                return reports;
            }
        } finally {
            lists.forEach(NamedTensorList::close);
        }
    }

    @Override
    public void close() {
        guard.close(batch::close);
    }

    /** Options of a check; {@link #model} and {@link #inputs} are required. */
    public static final class Builder {
        private static final String A_MODEL = "the model to check (Models.torchScript(...), Models.module(...) or "
                + "Models.function(...))";
        private static final String A_REDUCTION = "Reduction.SUM or Reduction.MEAN";
        private Model model;
        private List<Tensor> inputs = List.of();
        private List<Tensor> targets = List.of();
        private int batchDim;
        private Integer targetBatchDim;
        private Loss loss = Loss.L1;
        private List<Reduction> reductions = List.of(Reduction.SUM, Reduction.MEAN);
        private Tolerance tolerance = Tolerance.DEFAULT;
        private int threads;
        private boolean probes = true;
        private int probeSamples = Probes.DEFAULT_PROBE_SAMPLES;

        private Builder() {
        }

        public Builder model(Model model) {
            this.model = BadInputException.requireNonNull(model, "model", A_MODEL);
            return this;
        }

        /** The model's inputs: one tensor, or one per forward argument for multi-input models. */
        public Builder inputs(Tensor... inputs) {
            return inputs(Arrays.asList(BadInputException.requireNonNull(inputs, "inputs",
                    "one tensor, or one per forward argument")));
        }

        /** Checked for nulls and closed tensors here, and again by {@link #build()}. */
        public Builder inputs(List<Tensor> inputs) {
            this.inputs = List.copyOf(Natives.requireLive(inputs, "input"));
            return this;
        }

        /** The loss targets (none for l1/sum against zeros). */
        public Builder targets(Tensor... targets) {
            return targets(Arrays.asList(BadInputException.requireNonNull(targets, "targets",
                    "the target tensors, or call targets() not at all for a loss without targets (l1, sum)")));
        }

        public Builder targets(List<Tensor> targets) {
            this.targets = List.copyOf(Natives.requireLive(targets, "target"));
            return this;
        }

        /** Where the batch is in every input: 0 (default) for batch-first, 1 for time-first data. */
        public Builder batchDim(int batchDim) {
            this.batchDim = batchDim;
            return this;
        }

        /** Where the batch is in every target; defaults to {@link #batchDim}. */
        public Builder targetBatchDim(int targetBatchDim) {
            this.targetBatchDim = targetBatchDim;
            return this;
        }

        public Builder loss(Loss loss) {
            this.loss = BadInputException.requireNonNull(loss, "loss", "Loss.L1, Loss.MSE, Loss.CROSS_ENTROPY, "
                    + "Loss.SUM or Loss.custom(...)");
            return this;
        }

        /** Check only this reduction (both are checked by default). */
        public Builder reduction(Reduction reduction) {
            this.reductions = List.of(BadInputException.requireNonNull(reduction, "reduction", A_REDUCTION));
            return this;
        }

        public Builder reductions(Reduction... reductions) {
            if (BadInputException.requireNonNull(reductions, "reductions", A_REDUCTION).length == 0) {
                throw new BadInputException("give at least one reduction");
            }
            for (int k = 0; k < reductions.length; k++) {
                BadInputException.requireNonNull(reductions[k], "reduction " + k, A_REDUCTION);
            }
            this.reductions = List.copyOf(new LinkedHashSet<>(Arrays.asList(reductions)));  // each checked once
            return this;
        }

        public Builder tolerance(double atol, double rtol) {
            this.tolerance = new Tolerance(atol, rtol);
            return this;
        }

        /**
         * How many threads a run uses, at most {@link Threads#max()}; default: LibTorch's intra-op
         * count. The reference spreads its samples over this many psg4j workers, each running its
         * samples' ops on one intra-op thread (so verdicts and numbers are the same at every
         * count); the probes and the sampler run with it as LibTorch's intra-op count of the
         * calling thread. The caller's own settings are restored after each run.
         */
        public Builder threads(int threads) {
            this.threads = Threads.checked(threads, "threads");
            return this;
        }

        /** Whether {@link PerSampleCheck#run} probes the model first (default true). */
        public Builder probes(boolean probes) {
            this.probes = probes;
            return this;
        }

        /**
         * How many flagged samples the probes name sources for, one backward each (default
         * {@link Probes#DEFAULT_PROBE_SAMPLES}, at most {@link Probes#MAX_PROBE_SAMPLES}); every sample is
         * probed whatever it is.
         */
        public Builder probeSamples(int probeSamples) {
            this.probeSamples = Probes.requireProbeSamples(probeSamples, "probeSamples");
            return this;
        }

        public PerSampleCheck build() {
            return new PerSampleCheck(this);
        }
    }
}
