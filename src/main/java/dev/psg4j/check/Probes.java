package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.internal.NativeHandles;
import dev.psg4j.bridge.CloseGuard;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.NativeCore.ProbeView;
import dev.psg4j.bridge.Natives;
import dev.psg4j.model.Model;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.AloneRoute;
import dev.psg4j.report.NonFiniteSite;
import dev.psg4j.report.ProbeMethod;
import dev.psg4j.report.DiagnosisKind;
import dev.psg4j.report.ProbeReport;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.LongFunction;
import java.util.stream.Collectors;

/**
 * Black-box probes of a model on a real batch, run natively in one call: NaN/Inf in the inputs or
 * the output first, then determinism (the same forward twice), then batch independence, checked
 * for every sample and every pair j → i:
 * <ul>
 *   <li>gradient route, exact: 2⌈log₂B⌉ input-VJPs whose cotangents are supported on the
 *       bit-partitions of the sample index (for integer inputs, from the first floating-point tensor
 *       computed from them, such as an embedding's output);</li>
 *   <li>value route: every sample run alone (one vmapped forward, or B one-sample forwards) must give
 *       its output in the batch, within a rounding tolerance (it sees mixing through {@code .item()});</li>
 *   <li>the flagged samples' sources are then named with one VJP each, at most {@code probeSamples}
 *       of them, and, for a chain of submodules or a TorchScript module, the first submodule where
 *       mixing starts.</li>
 * </ul>
 * A clean probe costs 2 batched forwards, 2⌈log₂B⌉ VJPs and one vmapped forward at any B.
 */
public final class Probes {
    /** Flagged samples whose sources a report names by default (one VJP each). */
    public static final int DEFAULT_PROBE_SAMPLES = 8;

    /** The most flagged samples a report may name sources for. */
    public static final int MAX_PROBE_SAMPLES = 1024;

    /** Exact: independent paths give exact zeros, so any nonzero input gradient across samples is a leak. */
    private static final double TOLERANCE = 0.0;

    /** How many leaks a diagnosis message spells out; the report holds them all. */
    private static final int LEAKS_IN_MESSAGE = 6;

    private Probes() {
    }

    /**
     * Forgets what the probes found for {@code model}: checks keep their findings per model, for
     * its parameters' current values and a batch signature, and reuse them until a parameter
     * changes; after this call the next check of the model probes again (to time the probes, or
     * after changing what the model computes without changing a parameter).
     */
    public static void forget(Model model) {
        BadInputException.requireNonNull(model, "model", "the Model whose probe findings to forget");
        ProbeMemo.forget(model);
    }

    /**
     * What the batch-independence probe found.
     *
     * @param leaks         reported sample → every other sample its output depends on (at most probeSamples
     *                      entries; only samples that depend on others)
     * @param differsAlone  samples whose output changes when run alone (all B are run; mixing the gradient
     *                      route cannot see: a batch statistic through .item(), a data-dependent branch)
     * @param method        by input gradients, intermediate gradients (integer inputs) or values
     * @param mixingModule  the first submodule where mixing appears, when it could be localized
     * @param affected      every sample whose output is known to depend on other samples
     * @param sources       every sample that some other sample's output depends on
     * @param dense         the leaks could not all be decoded from the partition passes, or named within the bound
     * @param leaksComplete every flagged sample is in {@code leaks}
     * @param aloneRoute    how samples ran alone: vmap, per sample or not at all (the model cannot run one)
     */
    public record BatchIndependence(boolean independent, ProbeMethod method, Map<Integer, List<Integer>> leaks,
                                    List<Integer> differsAlone, Optional<String> mixingModule, List<Integer> affected,
                                    List<Integer> sources, boolean dense, boolean leaksComplete, AloneRoute aloneRoute) {
        /** A {@code batch_mixing} diagnosis, or none when the model is batch-independent. */
        public Optional<Diagnosis> diagnosis(long batchSize) {
            if (independent) {
                return Optional.empty();
            }
            List<String> findings = new ArrayList<>();
            if (!leaksComplete || affected.size() > LEAKS_IN_MESSAGE) {
                findings.add("the outputs of " + affected.size() + " of " + batchSize + " samples depend on other samples"
                        + (affected.isEmpty() ? "" : " (" + describeSamples(affected) + ")"));
            }
            leaks.entrySet().stream().limit(LEAKS_IN_MESSAGE).forEach(e ->
                    findings.add("sample " + e.getKey() + "'s output depends on " + describeSamples(e.getValue())));
            if (leaks.size() > LEAKS_IN_MESSAGE) {
                findings.add("... (" + (leaks.size() - LEAKS_IN_MESSAGE) + " more in the report)");
            }
            if (!leaks.isEmpty()) {
                int last = findings.size() - 1;
                findings.set(last, findings.get(last) + " (found by " + method.label().replace('_', ' ') + ")");
            }
            List<Integer> onlyAlone = differsAlone.stream().filter(i -> !leaks.containsKey(i)).toList();
            if (!onlyAlone.isEmpty()) {
                findings.add(onlyAlone.size() == 1
                        ? "sample " + onlyAlone.get(0) + "'s output changes when it runs alone"
                        : "the outputs of " + describeSamples(onlyAlone) + " change when they run alone");
            }
            String where = mixingModule.map(m -> " Mixing starts in submodule '" + m + "'.").orElse("");
            String message = "batch mixing: " + String.join("; ", findings) + "." + where
                    + " A sample's gradient then depends on the rest of the batch, so per-sample clipping does not"
                    + " bound its influence: use per-sample normalization (GroupNorm, LayerNorm, BatchNorm in"
                    + " eval mode) and keep operations within each sample.";
            return Optional.of(new Diagnosis(DiagnosisKind.BATCH_MIXING, mixingModule.orElse(null), affected, message));
        }
    }

    /** What the determinism probe found: the largest difference between two forwards. */
    public record Determinism(boolean deterministic, double maxAbsDiff) {
        /** A {@code non_deterministic} diagnosis, or none. */
        public Optional<Diagnosis> diagnosis() {
            if (deterministic) {
                return Optional.empty();
            }
            return Optional.of(new Diagnosis(DiagnosisKind.NON_DETERMINISTIC, null, List.of(), String.format(
                    "non-deterministic forward: two forwards of the same batch differ by up to %.3g; put the model"
                            + " in eval mode (dropout) or fix the seed, or every engine will seem to disagree with"
                            + " the reference", maxAbsDiff)));
        }
    }

    /** NaN or Inf in input samples or in the model's output for them ({@code where}: "input" or "output"). */
    public record NonFinite(String where, List<Integer> samples) {
        /** A {@code non_finite} diagnosis naming the samples. */
        public Diagnosis diagnosis() {
            String which = samples.size() == 1 ? "sample " + samples.get(0) : describeSamples(samples);
            String fix = where.equals("input")
                    ? "fix or drop those samples before checking"
                    : "the model produces them (a log or division of zero, an overflow): fix the model or the inputs";
            return new Diagnosis(DiagnosisKind.NON_FINITE, null, samples, "non-finite values: the " + where + " of " + which
                    + " holds NaN or Inf, so no gradient of " + (samples.size() == 1 ? "it" : "them")
                    + " can be checked; " + fix);
        }
    }

    /** Probes with {@link #DEFAULT_PROBE_SAMPLES}; see {@link #batchIndependence(Model, Batch, int)}. */
    public static BatchIndependence batchIndependence(Model model, Batch batch) {
        return batchIndependence(model, batch, DEFAULT_PROBE_SAMPLES);
    }

    /**
     * The batch-independence part of {@link #report}; a {@link BadInputException} saying why when the
     * probe stops before it (NaN/Inf, a non-deterministic forward).
     */
    public static BatchIndependence batchIndependence(Model model, Batch batch, int probeSamples) {
        try (ProbeView view = run(model, batch, probeSamples)) {
            if (view.non_finite_count() > 0) {
                throw new BadInputException(nonFinite(view).diagnosis().message());
            }
            if (!view.has_independence()) {
                throw new BadInputException("two forwards of the same batch differ: the batch-independence probe needs"
                        + " a deterministic forward; put the model in eval mode (dropout) or fix the seed");
            }
            return independence(view);
        }
    }

    public static Determinism determinism(Model model, Batch batch) {
        try (CloseGuard.Use use = NativeHandles.use(model)) {
            double diff = Natives.call(
                    () -> NativeCore.probe_determinism(NativeHandles.handle(model), batch.handle()));
            return new Determinism(diff == 0.0, diff);
        }
    }

    /** The diagnoses of the probes (empty when the model passes them), with {@link #DEFAULT_PROBE_SAMPLES}. */
    public static List<Diagnosis> diagnose(Model model, Batch batch) {
        return diagnose(model, batch, DEFAULT_PROBE_SAMPLES);
    }

    public static List<Diagnosis> diagnose(Model model, Batch batch, int probeSamples) {
        return report(model, batch, probeSamples).diagnoses();
    }

    /** A {@link BadInputException} unless {@code probeSamples} is in [1, {@link #MAX_PROBE_SAMPLES}]. */
    public static int requireProbeSamples(int probeSamples, String what) {
        if (probeSamples < 1 || probeSamples > MAX_PROBE_SAMPLES) {
            throw new BadInputException(what + " must be between 1 and " + MAX_PROBE_SAMPLES + " (the flagged samples"
                    + " whose sources the report names, one backward each), got " + probeSamples);
        }
        return probeSamples;
    }

    /**
     * All probes, in one native call: NaN/Inf in the inputs or the output, then determinism, then (for
     * a deterministic forward) batch independence. {@code probeSamples} bounds how many flagged
     * samples get their sources named; every sample is probed whatever it is.
     */
    public static ProbeReport report(Model model, Batch batch, int probeSamples) {
        try (ProbeView view = run(model, batch, probeSamples)) {
            List<Diagnosis> diagnoses = new ArrayList<>();
            NonFinite nonFinite = view.non_finite_count() > 0 ? nonFinite(view) : null;
            Determinism determinism = new Determinism(view.deterministic(), view.max_abs_diff());
            BatchIndependence independence = view.has_independence() ? independence(view) : null;
            if (nonFinite != null) {
                diagnoses.add(nonFinite.diagnosis());
            }
            determinism.diagnosis().ifPresent(diagnoses::add);
            if (independence != null) {
                independence.diagnosis(batch.size()).ifPresent(diagnoses::add);
            }
            boolean passed = diagnoses.isEmpty();
            ProbeReport.Passes passes = new ProbeReport.Passes(view.batched_forwards(), view.vjps(),
                    view.vmapped_forwards(), view.sample_forwards());
            return new ProbeReport(passed, batch.size(), determinism.deterministic(), determinism.maxAbsDiff(),
                    independence == null ? null : independence.independent(),
                    independence == null ? null : independence.method(),
                    independence == null ? null : independence.leaks(),
                    independence == null ? null : independence.differsAlone(),
                    independence == null ? null : independence.mixingModule().orElse(null),
                    independence == null ? null : independence.affected(),
                    independence == null ? null : independence.sources(),
                    independence == null ? null : independence.dense(),
                    independence == null ? null : independence.leaksComplete(),
                    independence == null ? null : independence.aloneRoute(),
                    nonFinite == null ? null : NonFiniteSite.of(nonFinite.where()),
                    nonFinite == null ? null : nonFinite.samples(),
                    passes, view.probe_ms(), diagnoses);
        }
    }

    private static ProbeView run(Model model, Batch batch, int probeSamples) {
        requireProbeSamples(probeSamples, "probe samples");
        // Exact float32 on CUDA: TF32's rounding differs between a batched and a one-sample matmul
        // by far more than the probes' tolerance, which would read as batch mixing.
        try (CloseGuard.Use use = NativeHandles.use(model); ExactFloat32Scope exact = ExactFloat32Scope.open()) {
            return Natives.call(
                    () -> NativeCore.probe(NativeHandles.handle(model), batch.handle(), probeSamples, TOLERANCE));
        }
    }

    private static NonFinite nonFinite(ProbeView view) {
        return new NonFinite(view.non_finite_where(), ints(view.non_finite_count(), view::non_finite_sample));
    }

    private static BatchIndependence independence(ProbeView view) {
        Map<Integer, List<Integer>> leaks = new LinkedHashMap<>();
        for (long k = 0; k < view.leak_target_count(); k++) {
            long target = k;
            leaks.put((int) view.leak_target(k), ints(view.leak_source_count(k), m -> view.leak_source(target, m)));
        }
        String module = view.mixing_module();
        return new BatchIndependence(view.independent(), ProbeMethod.of(view.method()), leaks,
                ints(view.differs_alone_count(), view::differs_alone), module.isEmpty() ? Optional.empty() : Optional.of(module),
                ints(view.affected_count(), view::affected), ints(view.source_count(), view::source), view.dense(),
                view.leaks_complete(), AloneRoute.of(view.alone_route()));
    }

    private static List<Integer> ints(long count, LongFunction<Long> element) {
        List<Integer> out = new ArrayList<>();
        for (long k = 0; k < count; k++) {
            out.add(element.apply(k).intValue());
        }
        return List.copyOf(out);
    }

    /** "sample 3", "samples 1, 2, 5", or for many "12 samples (0, 1, ..., 31)". */
    static String describeSamples(List<Integer> samples) {
        if (samples.size() == 1) {
            return "sample " + samples.get(0);
        }
        if (samples.size() > 6) {
            return samples.size() + " samples (" + samples.get(0) + ", " + samples.get(1) + ", ..., "
                    + samples.get(samples.size() - 1) + ")";
        }
        return "samples " + samples.stream().map(String::valueOf).collect(Collectors.joining(", "));
    }
}
