package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.internal.NativeHandles;
import dev.psg4j.bridge.CloseGuard;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.NativeCore.ComparisonList;
import dev.psg4j.bridge.NativeCore.ComparisonView;
import dev.psg4j.bridge.NativeCore.NamedTensorList;
import dev.psg4j.bridge.NativeCore.NativeLoss;
import dev.psg4j.bridge.NativeCore.SketchView;
import dev.psg4j.bridge.NativeCore.ReductionCandidates;
import dev.psg4j.bridge.Natives;
import dev.psg4j.model.Model;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.ClippingSummary;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.Failure;
import dev.psg4j.report.ParamReport;
import dev.psg4j.report.ReductionReport;
import dev.psg4j.report.RoundingSummary;
import dev.psg4j.report.SketchSummary;

import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Verifies a {@link GradSampler}'s per-sample gradients against the microbatch reference, for each
 * reduction asked (both by default), in {@link CheckMode#EXACT exact} mode (the default: every
 * element of every sample; the reference streams sample by sample into the comparison, so a check
 * costs the candidate's memory plus O(|θ|) per thread) or {@link CheckMode#SKETCH sketch} mode.
 *
 * <p><b>Tolerance</b> ({@link Builder#toleranceRule}): by default an element matches when
 * {@code |candidate - reference| <= atol + rtol·|reference| + 4ρ}, ρ the reference's own rounding
 * level for that parameter and sample, measured on the check's batch (4 samples computed again in
 * double, the model cast whole; a model that cannot run in double against its parameters moved by
 * one ulp): correct float32 gradients of a model whose gradient elements are long sums pass, and an
 * element off by 10ρ does not. {@link ToleranceRule#ALLCLOSE} is exactly torch.allclose.
 *
 * <p><b>Sketch mode</b> draws K weight vectors wᵢ = ±(1 + U) (a fair sign, U uniform on [0, 1):
 * ±1 weights would cancel a swap of two samples with probability ½ per projection, Gaussian ones
 * can be near zero for the one sample that is wrong) and compares, element by element, Σᵢ wᵢ·Gᵢ
 * (the candidate, one read) with ∇θ Σᵢ wᵢ·Lᵢ (one batched forward and K backwards serve both
 * reductions for the built-in losses). A parameter whose residual is at rounding level in every
 * element of every projection passes; any other is decided by the reference on that parameter
 * alone, which gives exact mode's verdict and every report field for it. So a sketch fails
 * exactly when exact mode would, except where a wrong element's residual falls into the pass
 * zone: for a sample off by e at an element, each projection lets it through with probability at
 * most P / |e| (P: that element's pass threshold, at the parameter's own rounding level and never
 * above one typical sample's tolerance), independently, so at most (P / |e|)^K. The report records the seed;
 * {@link Builder#seed} fixes it, otherwise each run draws a fresh one. Sketch mode needs the probes:
 * the batched forward stands in for the one-sample batches only on a batch-independent,
 * deterministic model.
 *
 * <p><b>Reuse in a training loop</b>: build once, then {@link #run(GradSampler, List, List)} each step
 * with that step's batch (same batch dimensions). The probes (a property of the model, not of the
 * batch) run on the first run and again when the inputs' shapes or dtypes change, or every
 * {@link Builder#probeEvery} runs; each run sees the parameters' current values.
 *
 * <p><b>Devices</b> ({@link Builder#device}): a check runs on one device, "cpu" or "cuda:N", by
 * default the device of the model's trainable parameters. It moves (copies) the batch it builds
 * onto that device, and likewise each step's batch given to {@link #run(GradSampler, List, List)};
 * it never moves the {@link Model}, which is the caller's and may be shared by threads: a model
 * whose trainable parameters are on another device is refused (move the model first, e.g.
 * {@code module.to(...)}), and so is a candidate (gradients, norms or a clipped sum) that a sampler
 * returns on another device (a BadInputException naming both devices). On CUDA each whole run,
 * sampler included, holds an {@link ExactFloat32Scope} (float32 matmuls and convolutions in IEEE
 * float32, not TF32, whose 10-bit rounding is far above rtol; process-wide, saved and restored);
 * the reference runs its samples on CUDA streams, or replays a captured CUDA graph
 * ({@link Builder#cudaGraphs}). The report's {@code device} is the check's device and
 * {@code reference_route} says how the reference ran; every other field means what it does on CPU.
 *
 * <p>Ownership: the check owns its batch (the inputs and targets given, copied onto its device
 * where they are elsewhere; the given tensors stay the caller's) and frees it on {@link #close}; a
 * step's batch is made likewise and freed when that run ends. It does not own the {@link Model}. It owns each gradient map its
 * sampler returns and closes those tensors once compared. A check may be shared by threads:
 * {@link #run} calls may overlap (on a shared Model too) and give the same reports as one thread
 * would; {@link #close} waits for running ones, and a run after close throws
 * IllegalStateException. Nothing process-wide is left changed: a
 * {@link Builder#threads} count is set for the run's duration and the previous one restored, and
 * the process's TF32 setting and OpenBLAS thread count are restored when the last overlapping run
 * ends. Each whole run holds a {@link OneBlasThreadScope}, so a report's every number is the same
 * whatever other threads run meanwhile (and the process's other BLAS calls run on one thread
 * while it lasts).
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
    private final ToleranceRule toleranceRule;
    private final boolean probes;
    private final int threads;
    private final CloseGuard guard = new CloseGuard("PerSampleCheck");
    private final int probeSamples;
    private final CheckMode mode;
    private final int projections;
    private final SketchPrecision sketchPrecision;
    private final Long seed;
    private final ProbeCache probeCache;
    private final String device;
    private final boolean cudaGraphs;

    private PerSampleCheck(Builder b) {
        this.model = BadInputException.requireNonNull(b.model, "model", Builder.A_MODEL);
        if (b.inputs.isEmpty()) {
            throw new BadInputException("no inputs: give the batch with inputs(x) (several tensors for multi-input models)");
        }
        if (b.mode == CheckMode.SKETCH && !b.probes) {
            throw new BadInputException("sketch mode needs the probes (a sketch is valid only on a batch-independent, "
                    + "deterministic model): leave probes(true) or use mode(CheckMode.EXACT)");
        }
        this.device = b.device != null ? b.device : defaultDevice(model, b.inputs.get(0));
        this.cudaGraphs = b.cudaGraphs;
        requireModelOnDevice();
        this.batch = new Batch(b.inputs, b.targets, b.batchDim, b.targetBatchDim == null ? b.batchDim : b.targetBatchDim,
                device);
        this.loss = b.loss;
        this.reductions = List.copyOf(b.reductions);
        this.tolerance = b.tolerance;
        this.toleranceRule = b.toleranceRule;
        this.probes = b.probes;
        this.threads = b.threads;
        this.probeSamples = b.probeSamples;
        this.mode = b.mode;
        this.projections = b.projections;
        this.sketchPrecision = b.sketchPrecision;
        this.seed = b.seed;
        this.probeCache = new ProbeCache(b.probeEvery);
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

    /** The element-wise criterion of gradient checks: {@link ToleranceRule#ROUNDING} unless built otherwise. */
    public ToleranceRule toleranceRule() {
        return toleranceRule;
    }

    public CheckMode mode() {
        return mode;
    }

    /** The device the check runs on, canonical ("cpu", "cuda:0"). */
    public String device() {
        return device;
    }

    /**
     * The device of the model's trainable parameters (the batch's for a model without any); a
     * BadInputException where that is no device a check runs on (e.g. "meta").
     */
    private static String defaultDevice(Model model, Tensor firstInput) {
        Map<String, Tensor> parameters = model.trainableParameters();
        try {
            Tensor first = parameters.isEmpty() ? Natives.requireLive(firstInput, "input 0")
                    : parameters.values().iterator().next();
            if (!first.defined()) {
                return Devices.CPU;  // an undefined input: the batch names it
            }
            String on = Devices.of(first);
            try {
                return Devices.canonical(on);
            } catch (BadInputException e) {
                throw new BadInputException("the model's parameters are on " + on + ", where no check runs: move the "
                        + "model to the CPU or a CUDA device (module.to(...)), or give the check's device(...) ("
                        + e.getMessage() + ")", e);
            }
        } finally {
            Natives.closeAll(parameters);
        }
    }

    /**
     * Refuses a model whose trainable parameters are not all on the check's device: the check
     * never moves the Model (the caller's, maybe shared by threads).
     */
    private void requireModelOnDevice() {
        Map<String, Tensor> parameters = model.trainableParameters();
        try {
            Map<String, String> elsewhere = new LinkedHashMap<>();
            parameters.forEach((name, p) -> {
                String on = Devices.of(p);
                if (!on.equals(device)) {
                    elsewhere.put(name, on);
                }
            });
            if (elsewhere.isEmpty()) {
                return;
            }
            java.util.Set<String> devices = new java.util.TreeSet<>(elsewhere.values());
            if (elsewhere.size() == parameters.size() && devices.size() == 1) {
                String on = devices.iterator().next();
                throw new BadInputException("the model's parameters are on " + on + " but the check runs on " + device
                        + ": move the model first (module.to(...)) or use device(\"" + on + "\")");
            }
            Map.Entry<String, String> first = elsewhere.entrySet().iterator().next();
            throw new BadInputException("the model's parameter '" + first.getKey() + "' is on " + first.getValue()
                    + " but the check runs on " + device + " (" + elsewhere.size() + " of " + parameters.size()
                    + " parameters are elsewhere): move the whole model to one device first (module.to(...))");
        } finally {
            Natives.closeAll(parameters);
        }
    }

    /**
     * Refuses a tensor of a sampler's candidate that is not on the check's device: "the KIND 'NAME'
     * from SOURCE is on X but the check runs on Y: ...".
     */
    private void requireOnDevice(Map<String, Tensor> candidate, String kind, String source) {
        candidate.forEach((name, t) -> {
            if (t != null && !t.isNull()) {  // null and freed ones get their own message later
                Devices.requireOn(t, device, "the " + kind + " '" + (name.isEmpty() ? "(whole gradient)" : name)
                        + "' from " + source);
            }
        });
    }

    /**
     * Probes the model (determinism, batch independence; see {@link Probes}) unless turned off,
     * then runs {@code sampler} for each reduction and compares its output with the reference. The
     * check fails on a mismatch, and on a probe's finding without comparing anything: a
     * batch-mixing or non-deterministic model has no per-sample gradients to verify.
     */
    public CheckReport run(GradSampler sampler) {
        requireSampler(sampler);
        try (CloseGuard.Use use = guard.use()) {
            return runOn(sampler, batch);
        }
    }

    /**
     * {@link #run(GradSampler)} on another batch of the same layout (a training step's): the
     * inputs and targets stay the caller's; the probes are reused while the shapes stay the same
     * (see {@link Builder#probeEvery}).
     */
    public CheckReport run(GradSampler sampler, List<Tensor> inputs, List<Tensor> targets) {
        requireSampler(sampler);
        BadInputException.requireNonNull(inputs, "inputs", "the step's input tensors");
        BadInputException.requireNonNull(targets, "targets", "the step's targets (an empty list when the loss needs none)");
        if (inputs.isEmpty()) {
            throw new BadInputException("no inputs: give the step's batch (several tensors for multi-input models)");
        }
        try (CloseGuard.Use use = guard.use();
             Batch step = new Batch(Natives.requireLive(inputs, "input"), Natives.requireLive(targets, "target"),
                     batch.batchDim(), batch.targetBatchDim(), device)) {
            return runOn(sampler, step);
        }
    }

    private static void requireSampler(GradSampler sampler) {
        BadInputException.requireNonNull(sampler, "sampler", "a GradSampler (Engines.vmap(), Engines.microbatch(), "
                + "Engines.precomputed(...) or your own)");
    }

    private CheckReport runOn(GradSampler sampler, Batch on) {
        try (CloseGuard.Use modelUse = NativeHandles.use(model); RunScope scope = runScope()) {
            return runProbedCheck(sampler, on);
        }
    }

    /**
     * What a whole run holds: its intra-op thread count, one BLAS thread and exact float32 on CUDA;
     * the model checked on the device.
     */
    private RunScope runScope() {
        requireModelOnDevice();
        IntraOpThreads threadScope = IntraOpThreads.set(threads);
        OneBlasThreadScope blas = null;
        try {
            blas = OneBlasThreadScope.open();
            return new RunScope(threadScope, blas, ExactFloat32Scope.open());
        } catch (RuntimeException e) {
            try (IntraOpThreads t = threadScope) {
                if (blas != null) {
                    blas.close();
                }
            }
            throw e;
        }
    }

    private record RunScope(IntraOpThreads threads, OneBlasThreadScope blas, ExactFloat32Scope exactFloat32)
            implements AutoCloseable {
        @Override
        public void close() {
            try (IntraOpThreads t = threads; OneBlasThreadScope b = blas) {
                exactFloat32.close();
            }
        }
    }

    private NativeCore.ReferenceSpread spread() {
        return new NativeCore.ReferenceSpread(threads, cudaGraphs);
    }

    private CheckReport runProbedCheck(GradSampler sampler, Batch on) {
        List<Diagnosis> diagnoses = probes ? probeCache.diagnoses(on,
                b -> ProbeMemo.diagnoses(model, b, probeSamples, () -> Probes.diagnose(model, b, probeSamples)))
                : List.of();
        if (!diagnoses.isEmpty()) {
            // Nothing to compare: the reference's one-sample batches would not be the model's
            // (and BatchNorm in train mode cannot even run one sample).
            return report(false, sampler, on, List.of(), null, List.of(), diagnoses, new ReferenceFacts());
        }
        Map<Reduction, Map<String, Tensor>> candidates = new EnumMap<>(Reduction.class);
        try {
            for (Reduction reduction : reductions) {
                candidates.put(reduction, candidate(sampler, on, reduction));
                requireOnDevice(candidates.get(reduction), "gradient", "grad sampler '" + sampler.name() + "'");
            }
            List<Failure> failures = new ArrayList<>();
            if (mode == CheckMode.SKETCH) {
                long runSeed = seed != null ? seed : ThreadLocalRandom.current().nextLong();
                return compareSketch(sampler, on, candidates, runSeed, failures);
            }
            List<Diagnosis> valueDiagnoses = new ArrayList<>();  // why values are wrong
            ReferenceFacts facts = new ReferenceFacts();
            List<ReductionReport> reports = compareExact(on, candidates, failures, valueDiagnoses, facts);
            return report(reports.stream().allMatch(ReductionReport::passed), sampler, on, reports, null, failures,
                    valueDiagnoses, facts);
        } finally {
            candidates.values().forEach(Natives::closeAll);  // the check owns what a sampler returns
        }
    }

    private Map<String, Tensor> candidate(GradSampler sampler, Batch on, Reduction reduction) {
        Map<String, Tensor> candidate = sampler.perSampleGradients(model, on, loss, reduction);
        if (candidate == null) {
            throw new BadInputException("grad sampler '" + sampler.name() + "' returned null for reduction "
                    + reduction.label() + ": return a map {parameter name: Tensor[B, *shape]}");
        }
        return candidate;
    }

    private CheckReport report(boolean passed, GradSampler sampler, Batch on, List<ReductionReport> reports,
                               SketchSummary sketch, List<Failure> failures, List<Diagnosis> diagnoses,
                               ReferenceFacts facts) {
        return new CheckReport(CheckReport.SCHEMA_VERSION, passed, mode.label(), sampler.name(), on.size(),
                device, loss.name(), tolerance.atol(), tolerance.rtol(), reports, sketch, failures, diagnoses,
                CheckReport.GRADIENTS, null, facts.route, toleranceRule.label(), facts.precision, facts.rounding);
    }

    /**
     * What the comparisons say about the reference (they share one pass): how it ran, its precision
     * and how its rounding level was measured; the first that names each, null where none does.
     */
    private static final class ReferenceFacts {
        String route;
        String precision;
        RoundingSummary rounding;

        void read(ComparisonView view) {
            String r = view.reference_route();
            if (route == null && r != null && !r.isEmpty()) {
                route = r;
            }
            String p = view.reference_precision();
            if (precision == null && p != null && !p.isEmpty()) {
                precision = p;
            }
            String against = view.rounding_yardstick();
            if (rounding == null && against != null && !against.isEmpty()) {
                List<Long> samples = new ArrayList<>();
                for (long k = 0; k < view.rounding_sample_count(); k++) {
                    samples.add(view.rounding_sample(k));
                }
                rounding = new RoundingSummary(against, samples, ComparisonView.rounding_multiple());
            }
        }
    }

    /**
     * One reduction's comparison, read once (exact and sketch alike): its report, its failures and
     * diagnoses added to the run's, and what it says about the reference.
     */
    private ReductionReport read(ComparisonView view, Reduction reduction, Map<String, Tensor> candidate,
                                 List<Failure> failures, List<Diagnosis> valueDiagnoses, ReferenceFacts facts) {
        facts.read(view);
        ComparisonStats stats = ComparisonStats.of(view);
        ReductionReport report = Verdicts.read(view, stats, reduction, failures);
        valueDiagnoses.addAll(diagnoses(view, stats, report, candidate));
        return report;
    }

    /** The diagnoses of one reduction's failures: rounding first (RoundingDiagnoses), then the value kinds. */
    private List<Diagnosis> diagnoses(ComparisonView view, ComparisonStats stats, ReductionReport report,
                                      Map<String, Tensor> candidate) {
        List<Diagnosis> out = new ArrayList<>(
                RoundingDiagnoses.read(view, stats, report, tolerance, toleranceRule, candidate));
        Set<String> explained = new HashSet<>();
        out.forEach(d -> explained.add(d.param()));
        out.addAll(ValueDiagnoses.read(view, report, tolerance, explained));
        return out;
    }

    /**
     * The exact check of every reduction's candidate in one native call: the reference streams once,
     * one sum backward per sample serving both reductions where the loss makes that exact, over
     * {@link Builder#threads} sample workers. Reports and failures come in the candidates' order.
     */
    private List<ReductionReport> compareExact(Batch on, Map<Reduction, Map<String, Tensor>> candidates,
                                               List<Failure> failures, List<Diagnosis> valueDiagnoses,
                                               ReferenceFacts facts) {
        List<NamedTensorList> lists = new ArrayList<>();
        try (NativeLoss lossHandle = loss.newHandle(); ReductionCandidates natives = new ReductionCandidates();
             NativeCore.ReferenceSpread spread = spread()) {
            for (Map.Entry<Reduction, Map<String, Tensor>> entry : candidates.entrySet()) {
                NamedTensorList list = Natives.namedList(entry.getValue(), "candidate gradient");
                lists.add(list);
                natives.add(entry.getKey().code(), list);
            }
            try (ComparisonList comparisons = Natives.call(
                    () -> NativeCore.compare_reductions(NativeHandles.handle(model), on.handle(), lossHandle, natives,
                            tolerance.atol(), tolerance.rtol(), toleranceRule, spread))) {
                List<ReductionReport> reports = new ArrayList<>();
                long k = 0;
                for (Reduction reduction : candidates.keySet()) {
                    try (ComparisonView view = comparisons.get(k++)) {
                        reports.add(read(view, reduction, candidates.get(reduction), failures, valueDiagnoses, facts));
                    }
                }
                return reports;
            }
        } finally {
            lists.forEach(NamedTensorList::close);
        }
    }

    private CheckReport compareSketch(GradSampler sampler, Batch on, Map<Reduction, Map<String, Tensor>> candidates,
                                      long runSeed, List<Failure> failures) {
        List<Reduction> given = new ArrayList<>(candidates.keySet());  // EnumMap order: sum, then mean
        try (NamedTensorList sum = namedListOrNull(candidates.get(Reduction.SUM));
             NamedTensorList mean = namedListOrNull(candidates.get(Reduction.MEAN));
             NativeLoss lossHandle = loss.newHandle();
             SketchView view = Natives.call(
                     () -> NativeCore.sketch_compare(NativeHandles.handle(model), on.handle(), lossHandle, sum, mean,
                             tolerance.atol(), tolerance.rtol(), toleranceRule, projections, sketchPrecision,
                             runSeed))) {
            List<ReductionReport> reports = new ArrayList<>();
            List<Diagnosis> valueDiagnoses = new ArrayList<>();  // why values are wrong
            ReferenceFacts facts = new ReferenceFacts();
            for (int k = 0; k < given.size(); k++) {
                try (ComparisonView comparison = view.comparison(k)) {
                    reports.add(read(comparison, given.get(k), candidates.get(given.get(k)), failures, valueDiagnoses,
                            facts));
                }
            }
            SketchSummary summary = new SketchSummary(runSeed, projections, SketchSummary.WEIGHTS,
                    view.pass_fraction(), view.noise_multiplier(), sketchPrecision.label(),
                    SketchSummary.referencePrecision(view.float_first(), view.in_double()), view.forwards(),
                    view.backwards(), view.double_params(), view.exact_params());
            return report(reports.stream().allMatch(ReductionReport::passed), sampler, on, reports, summary, failures,
                    valueDiagnoses, facts);
        }
    }

    private static NamedTensorList namedListOrNull(Map<String, Tensor> candidate) {
        return candidate == null ? null : Natives.namedList(candidate, "candidate gradient");
    }

    // ---- Norms-only and clipped-sum candidates ----

    /**
     * Verifies a {@link NormSampler}'s per-sample norms against the reference's, for each reduction
     * asked, after the probes (as {@link #run}). The reference streams sample by sample (O(|θ|) per
     * thread); sample i's norm is the L2 norm of its whole gradient, sqrt(Σ_p ‖g_{i,p}‖²) over the
     * trainable parameters (a tied parameter once), or per parameter. A norm passes when
     * {@code |n_cand - n_ref| <= atol + rtol·n_ref} (torch.allclose on the norms; NaN or Inf never
     * matches); the report has one entry per compared norm vector, shape [B], named
     * "(whole gradient)" or by the parameter, and {@code candidate} "norms". A mismatch names the
     * samples; a diagnosis says when every norm is B or 1/B times the reference's
     * ({@code norms_mean_sum_confusion}), its square ({@code norms_squared}), the norms of other
     * samples ({@code norms_permuted}) or some samples' norms are scaled ({@code scaled_norms}).
     * A candidate that is not [B] per entry, or names parameters wrongly, is a BadInputException.
     * Exact mode only: a sketch applies to per-sample gradients.
     */
    public CheckReport runNorms(NormSampler sampler) {
        BadInputException.requireNonNull(sampler, "sampler", "a NormSampler (NormSampler.precomputed(...) or your own)");
        requireExact("norms");
        try (CloseGuard.Use use = guard.use(); CloseGuard.Use modelUse = NativeHandles.use(model);
             RunScope scope = runScope()) {
            List<Diagnosis> probed = probeFindings();
            if (!probed.isEmpty()) {
                return candidateReport(false, sampler.name(), List.of(), List.of(), probed, CheckReport.NORMS, null);
            }
            List<String> names = new ArrayList<>();
            Map<String, List<String>> aliases = model.aliases();
            Map<String, Tensor> parameters = model.trainableParameters();
            names.addAll(parameters.keySet());
            Natives.closeAll(parameters);
            List<Failure> failures = new ArrayList<>();
            List<Diagnosis> diagnoses = new ArrayList<>();
            List<ReductionReport> reports = new ArrayList<>();
            for (Reduction reduction : reductions) {
                Map<String, Tensor> norms = sampler.perSampleNorms(model, batch, loss, reduction);
                if (norms == null) {
                    throw new BadInputException("norm sampler '" + sampler.name() + "' returned null for reduction "
                            + reduction.label() + ": return {\"\": Tensor[B]} or {parameter name: Tensor[B]}");
                }
                try {
                    requireOnDevice(norms, "norm", "norm sampler '" + sampler.name() + "'");
                    List<NormVerdicts.Entry> entries = NormVerdicts.plan(norms, names, aliases, batch.size());
                    reports.add(compareNorms(reduction, entries, failures, diagnoses));
                } finally {
                    Natives.closeAll(norms);
                }
            }
            return candidateReport(reports.stream().allMatch(ReductionReport::passed), sampler.name(), reports, failures,
                    diagnoses, CheckReport.NORMS, null);
        }
    }

    /**
     * Verifies a {@link ClippedSumSampler}'s clipped sum, what a DP optimizer adds noise to, against
     * the reference's Σᵢ fᵢ·gᵢ with Opacus's factors (see {@link Clipping}: flat
     * min(1, C / (‖gᵢ‖ + 1e-6)), per-layer min(1, C_p / (‖g_{i,p}‖ + 1e-6))), for each reduction
     * asked, after the probes. The reference streams sample by sample and accumulates in double,
     * in sample order whatever the thread count (identical numbers at any count). An element
     * passes when {@code |s_cand - s_ref| <= atol + rtol·Σᵢ|fᵢ·g_i|} (element-wise): the rounding
     * bound of a sum of B terms each correct to rtol, which stays meaningful where the terms
     * cancel and |s_ref| is small. A failing parameter's failure names its worst element; a
     * diagnosis names a known clipping bug that reproduces the candidate (the factor not floored
     * at 1, no clipping, per-layer thresholds unsplit or split linearly, flat and per-layer
     * confused, clipping before the ×B of a mean loss, the sum divided by B). The report has
     * {@code candidate} "clipped_sum" and a {@code clipping} summary. A candidate with a missing,
     * extra or misshapen parameter is a BadInputException. Exact mode only.
     */
    public CheckReport runClippedSum(ClippedSumSampler sampler, Clipping clipping) {
        BadInputException.requireNonNull(sampler, "sampler", "a ClippedSumSampler (ClippedSumSampler.precomputed(...) "
                + "or your own)");
        BadInputException.requireNonNull(clipping, "clipping", "Clipping.flat(C), Clipping.perLayer(C) or "
                + "Clipping.perLayerThresholds(...)");
        requireExact("clipped sums");
        try (CloseGuard.Use use = guard.use(); CloseGuard.Use modelUse = NativeHandles.use(model);
             RunScope scope = runScope()) {
            List<Diagnosis> probed = probeFindings();
            if (!probed.isEmpty()) {
                return candidateReport(false, sampler.name(), List.of(), List.of(), probed, CheckReport.CLIPPED_SUM, null);
            }
            List<Failure> failures = new ArrayList<>();
            List<Diagnosis> diagnoses = new ArrayList<>();
            List<ReductionReport> reports = new ArrayList<>();
            Map<String, List<Integer>> clipped = new LinkedHashMap<>();
            Map<String, Double> thresholds = Map.of();
            for (Reduction reduction : reductions) {
                Map<String, Tensor> sum = sampler.clippedSum(model, batch, loss, reduction, clipping);
                if (sum == null) {
                    throw new BadInputException("clipped-sum sampler '" + sampler.name() + "' returned null for "
                            + "reduction " + reduction.label() + ": return {parameter name: Tensor[*shape]}");
                }
                try (NamedTensorList list = namedOnDevice(sum, "clipped-sum sampler '" + sampler.name() + "'");
                     NativeLoss lossHandle = loss.newHandle();
                     NativeCore.ClippingSpec spec = clippingSpec(clipping);
                     NativeCore.ReferenceSpread spread = spread();
                     NativeCore.ClippedSumView view = Natives.call(() -> NativeCore.compare_clipped_sum(
                             NativeHandles.handle(model), batch.handle(), lossHandle, reduction.code(), list, spec,
                             tolerance.atol(), tolerance.rtol(), spread))) {
                    reports.add(ClippedSumVerdicts.read(view, reduction, failures, diagnoses));
                    clipped.put(reduction.label(), ClippedSumVerdicts.clippedSamples(view));
                    thresholds = ClippedSumVerdicts.thresholds(view);
                } finally {
                    Natives.closeAll(sum);
                }
            }
            double total = Math.sqrt(thresholds.values().stream().mapToDouble(t -> t * t).sum());
            ClippingSummary summary = new ClippingSummary(clipping.mode().label(),
                    clipping.mode() == ClippingMode.FLAT || clipping.split() ? clipping.thresholds().get(0) : total,
                    thresholds, ClippingSummary.EPSILON, clipped);
            return candidateReport(reports.stream().allMatch(ReductionReport::passed), sampler.name(), reports, failures,
                    diagnoses, CheckReport.CLIPPED_SUM, summary);
        }
    }

    private NamedTensorList namedOnDevice(Map<String, Tensor> candidate, String source) {
        requireOnDevice(candidate, "clipped sum", source);
        return Natives.namedList(candidate, "candidate clipped sum");
    }

    private void requireExact(String what) {
        if (mode != CheckMode.EXACT) {
            throw new BadInputException("sketch mode checks per-sample gradients; " + what + " are always checked "
                    + "exactly: build the check with mode(CheckMode.EXACT)");
        }
    }

    private List<Diagnosis> probeFindings() {
        return probes ? probeCache.diagnoses(batch, b -> Probes.diagnose(model, b, probeSamples)) : List.of();
    }

    private static NativeCore.ClippingSpec clippingSpec(Clipping clipping) {
        NativeCore.ClippingSpec spec = new NativeCore.ClippingSpec();
        spec.set_mode(clipping.mode());
        clipping.thresholds().forEach(spec::add_threshold);
        return spec;
    }

    private ReductionReport compareNorms(Reduction reduction, List<NormVerdicts.Entry> entries, List<Failure> failures,
                                         List<Diagnosis> diagnoses) {
        try (NativeLoss lossHandle = loss.newHandle(); NativeCore.ReferenceSpread spread = spread();
             NativeCore.SampleNormsView view = Natives.call(
                     () -> NativeCore.reference_norms(NativeHandles.handle(model), batch.handle(), lossHandle, reduction.code(),
                             spread));
             Tensor perParameter = new Tensor(); Tensor whole = new Tensor()) {
            view.per_parameter(perParameter);
            view.whole(whole);
            double[] all = NormVerdicts.doubles(perParameter);
            double[] total = NormVerdicts.doubles(whole);
            int b = total.length;
            List<ParamReport> params = new ArrayList<>();
            for (NormVerdicts.Entry entry : entries) {
                double[] reference = entry.parameter() < 0 ? total
                        : Arrays.copyOfRange(all, entry.parameter() * b, (entry.parameter() + 1) * b);
                params.add(NormVerdicts.compare(reduction.label(), entry, reference, tolerance, failures, diagnoses));
            }
            return new ReductionReport(reduction.label(), params.stream().allMatch(ParamReport::passed), params);
        }
    }

    private CheckReport candidateReport(boolean passed, String sampler, List<ReductionReport> reports,
                                        List<Failure> failures, List<Diagnosis> diagnoses, String candidate,
                                        ClippingSummary clipping) {
        return new CheckReport(CheckReport.SCHEMA_VERSION, passed, CheckMode.EXACT.label(), sampler, batch.size(),
                device, loss.name(), tolerance.atol(), tolerance.rtol(), reports, null, failures, diagnoses,
                candidate, clipping, null);
    }

    // ---- end of the norms block ----

    @Override
    public void close() {
        guard.close(batch::close);
    }

    /** Sketch mode's default number of projections. */
    public static final int DEFAULT_PROJECTIONS = 2;
    /** The most projections a sketch may take (mirrors the native bound). */
    public static final int MAX_PROJECTIONS = 64;
    /** The longest probe interval {@link Builder#probeEvery} takes. */
    public static final int MAX_PROBE_EVERY = 1_000_000;

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
        private ToleranceRule toleranceRule = ToleranceRule.ROUNDING;
        private int threads;
        private boolean probes = true;
        private int probeSamples = Probes.DEFAULT_PROBE_SAMPLES;
        private CheckMode mode = CheckMode.EXACT;
        private int projections = DEFAULT_PROJECTIONS;
        private SketchPrecision sketchPrecision = SketchPrecision.DOUBLE;
        private Long seed;
        private int probeEvery;
        private String device;
        private boolean cudaGraphs;

        private Builder() {
        }

        /**
         * The device the check runs on: "cpu", "cuda" (= "cuda:0") or "cuda:N"; by default the
         * device of the model's trainable parameters. The check copies its batch (and each step's)
         * onto it; the model must be there already (it is never moved). An unknown name, a LibTorch
         * without CUDA, no visible CUDA device or an index out of range is a BadInputException here.
         */
        public Builder device(String device) {
            this.device = Devices.canonical(device);
            return this;
        }

        /**
         * On CUDA, whether the reference of exact mode, norms and clipped sums captures the
         * one-sample forward + backward once as a CUDA graph and replays it per sample (default
         * false: one-sample passes on CUDA streams). Where
         * capture fails the reference falls back to streams, and the report's
         * {@code reference_route} says so. No effect on the CPU.
         */
        public Builder cudaGraphs(boolean cudaGraphs) {
            this.cudaGraphs = cudaGraphs;
            return this;
        }

        /** Exact (the default) or sketch mode; see {@link PerSampleCheck}. */
        public Builder mode(CheckMode mode) {
            this.mode = BadInputException.requireNonNull(mode, "mode", "CheckMode.EXACT or CheckMode.SKETCH");
            return this;
        }

        /**
         * Sketch mode's number of projections K (default {@value #DEFAULT_PROJECTIONS}, at most
         * {@value #MAX_PROJECTIONS}): one backward each; a wrong element slips through all with
         * probability at most (P / |error|)^K.
         */
        public Builder projections(int projections) {
            if (projections < 1 || projections > MAX_PROJECTIONS) {
                throw new BadInputException("projections must be in [1, " + MAX_PROJECTIONS + "], got " + projections
                        + ": each costs one backward; 2 (the default) is enough at rounding-level thresholds");
            }
            this.projections = projections;
            return this;
        }

        /**
         * The precision of sketch mode's reference projections for a model that runs in float: {@link
         * SketchPrecision#DOUBLE} (the default: exact mode's verdict) or {@link SketchPrecision#FLOAT_FIRST}
         * (float, then double only for what float leaves undecided: cheaper, with the weaker guarantee
         * {@link SketchPrecision} states). No effect on a model that runs in double.
         */
        public Builder sketchPrecision(SketchPrecision precision) {
            this.sketchPrecision = BadInputException.requireNonNull(precision, "sketch precision",
                    "SketchPrecision.DOUBLE or SketchPrecision.FLOAT_FIRST");
            return this;
        }

        /** Fixes sketch mode's random weights (reproducible runs); by default each run draws its own seed. */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /**
         * Reruns the probes every {@code runs} runs even when the inputs keep their shapes (default 0:
         * only on the first run and when shapes or dtypes change), at most {@value #MAX_PROBE_EVERY}.
         */
        public Builder probeEvery(int runs) {
            if (runs < 0 || runs > MAX_PROBE_EVERY) {
                throw new BadInputException("probeEvery must be in [0, " + MAX_PROBE_EVERY + "], got " + runs
                        + " (0: probe only when the inputs' shapes change)");
            }
            this.probeEvery = runs;
            return this;
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

        /** The allclose part of the criterion (default 1e-5, 1e-4: Opacus's); see {@link #toleranceRule}. */
        public Builder tolerance(double atol, double rtol) {
            this.tolerance = new Tolerance(atol, rtol);
            return this;
        }

        /**
         * How per-sample gradients are compared, element by element (norms and clipped sums keep
         * their own criteria): {@link ToleranceRule#ROUNDING} (the default) passes
         * {@code |candidate - reference| <= atol + rtol·|reference| + 4ρ}, ρ the reference's own
         * rounding level for that parameter and sample, measured on a few samples of the check's
         * batch; {@link ToleranceRule#ALLCLOSE} is exactly torch.allclose, as Opacus's check (a
         * parameter it fails only at rounding level gets a {@code float_rounding} diagnosis).
         */
        public Builder toleranceRule(ToleranceRule rule) {
            this.toleranceRule = BadInputException.requireNonNull(rule, "tolerance rule",
                    "ToleranceRule.ROUNDING or ToleranceRule.ALLCLOSE");
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
