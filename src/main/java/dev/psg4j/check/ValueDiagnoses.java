package dev.psg4j.check;

import dev.psg4j.bridge.NativeCore.ComparisonView;
import dev.psg4j.bridge.NativeCore.FingerprintView;
import dev.psg4j.report.ParamStatus;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.DiagnosisKind;
import dev.psg4j.report.ParamReport;
import dev.psg4j.report.ReductionReport;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Collectors;

/**
 * Says why a parameter's values are wrong: recognizes, from the per-sample fingerprints the exact
 * comparison took ({@link SampleFingerprints}), the causes grad-sampler bugs actually have, and
 * returns at most one {@link Diagnosis} per failing parameter, naming it and the samples it explains:
 * <ul>
 * <li>{@code zero_samples}: the failing samples' gradients are zero (a missing contribution);
 * <li>{@code scaled}: they are one constant times the reference's (B or 1/B: the mean/sum
 *     convention; 2: a contribution counted twice; -1: a sign; other clean constants, or any one
 *     constant shared by two or more samples);
 * <li>{@code transposed}: a 2-D parameter's are the reference's transposed (reshaped to the
 *     parameter's shape when it is not square);
 * <li>{@code same_gradient_every_sample}: they all hold one gradient (the reference's batch mean,
 *     its batch sum, or another);
 * <li>{@code samples_permuted}: each holds another sample's reference gradient (swapped, rolled or
 *     shifted, reversed, or another order).
 * </ul>
 * A cause is claimed only when it explains every failing sample of the parameter (its samples are
 * the parameter's bad samples), tried in that order; where none fits there is no diagnosis.
 *
 * <p>Tolerance: a hypothesis says candidate cᵢ ≈ tᵢ for a known transform t of the reference. If cᵢ
 * matched tᵢ element-wise as the check demands (|c - t| ≤ s·atol + rtol·|t|, s the factor's size,
 * at least 1), the error e on the P projected elements has ‖e‖ ≤ s·atol·√P + rtol·‖c‖_P, and a
 * projection with N(0, 1) weights is N(0, ‖e‖²): within {@value #PROJECTION_MARGIN} times that bound
 * but with probability 2·10⁻⁹. Norms obey |‖c‖ - ‖t‖| ≤ ‖e‖ exactly ({@value #NORM_MARGIN} times the
 * bound covers rounding; the norms are over the projected elements too). rtol is taken at least {@value #RTOL_FLOOR} (a float candidate's own
 * rounding), so a check at rtol 0 still recognizes a float sampler's bug. A hypothesis must also be
 * visible: its target's projections must stand out of that tolerance (a zero target explains
 * nothing but zeros).
 */
final class ValueDiagnoses {
    static final double PROJECTION_MARGIN = 6;
    static final double NORM_MARGIN = 2;
    static final double RTOL_FLOOR = 1e-5;
    /** How close (relatively) a fitted factor must be to a clean constant to be named as one. */
    static final double CLEAN_RELATIVE = 1e-3;
    /** Samples a permutation message spells out before "...". */
    private static final int MAPPINGS_SHOWN = 4;

    private ValueDiagnoses() {
    }

    /**
     * The diagnoses of one reduction's failing parameters (report: what Verdicts read from this
     * view), but those of {@code explained} (already diagnosed).
     */
    static List<Diagnosis> read(ComparisonView view, ReductionReport report, Tolerance tolerance,
                                Set<String> explained) {
        List<Diagnosis> out = new ArrayList<>();
        int batch = Math.toIntExact(view.batch_size());
        for (int p = 0; p < report.params().size(); p++) {
            ParamReport param = report.params().get(p);
            if (param.passed() || param.nonFinite() || param.status() != ParamStatus.COMPARED || !view.has_fingerprints(p)
                    || explained.contains(param.name())) {
                continue;
            }
            try (FingerprintView fingerprints = view.fingerprints(p)) {
                diagnose(report.reduction(), param, SampleFingerprints.read(fingerprints, batch), tolerance)
                        .ifPresent(out::add);
            }
        }
        return out;
    }

    /** The likely cause of {@code param}'s failing samples, if one explains all of them. */
    static Optional<Diagnosis> diagnose(String reduction, ParamReport param, SampleFingerprints fingerprints,
                                        Tolerance tolerance) {
        List<Integer> bad = param.badSamples();
        if (bad.isEmpty()) {
            return Optional.empty();
        }
        Recognizer r = new Recognizer(fingerprints, bad, tolerance, param.shape().subList(1, param.shape().size()));
        List<Supplier<Optional<Finding>>> causes = List.of(r::zero, r::scaled, r::transposed, r::sameGradient,
                r::permuted);
        for (Supplier<Optional<Finding>> cause : causes) {
            Optional<Finding> found = cause.get();
            if (found.isPresent()) {
                return Optional.of(new Diagnosis(found.get().kind(), param.name(), List.copyOf(bad),
                        reduction + " / " + param.name() + ": " + found.get().message()));
            }
        }
        return Optional.empty();
    }

    private record Finding(DiagnosisKind kind, String message) {
    }

    /** The hypotheses, tested on one parameter's failing samples. */
    private static final class Recognizer {
        private final SampleFingerprints f;
        private final List<Integer> bad;
        private final double atol;
        private final double rtol;
        private final List<Long> shape;
        private final int batch;
        private final boolean everySample;

        Recognizer(SampleFingerprints f, List<Integer> bad, Tolerance tolerance, List<Long> shape) {
            this.f = f;
            this.bad = bad;
            this.atol = tolerance.atol();
            this.rtol = Math.max(tolerance.rtol(), RTOL_FLOOR);
            this.shape = shape;
            this.batch = f.batch();
            this.everySample = bad.size() == batch;
        }

        double projectionTolerance(int i, double scale) {
            return PROJECTION_MARGIN * (Math.max(1, Math.abs(scale)) * atol * Math.sqrt(f.projected())
                    + rtol * f.candidateProjectedNorm()[i]);
        }

        double normTolerance(int i, double scale) {
            return NORM_MARGIN * (Math.max(1, Math.abs(scale)) * atol * Math.sqrt(f.projected())
                    + rtol * f.candidateNorm()[i]);
        }

        /** Whether sample i's candidate is {@code target} (its projections; its norm, NaN when unknown). */
        boolean matches(int i, double[] target, double targetNorm, double scale) {
            double tolerance = projectionTolerance(i, scale);
            double[] c = f.candidateRow(i);
            for (int k = 0; k < c.length; k++) {
                if (!(Math.abs(c[k] - target[k]) <= tolerance)) {
                    return false;
                }
            }
            return Double.isNaN(targetNorm)
                    || Math.abs(f.candidateNorm()[i] - targetNorm) <= normTolerance(i, scale);
        }

        /** Whether {@code target} stands out of sample i's tolerance (so that matching it means something). */
        boolean visible(int i, double[] target, double scale) {
            double tolerance = projectionTolerance(i, scale);
            for (double t : target) {
                if (Math.abs(t) > tolerance) {
                    return true;
                }
            }
            return false;
        }

        boolean matchesOwnReference(int i) {
            return matches(i, f.referenceRow(i), f.referenceNorm()[i], 1);
        }

        Optional<Finding> zero() {
            double[] zeros = new double[f.projections()];
            for (int i : bad) {
                if (!matches(i, zeros, 0, 0)) {
                    return Optional.empty();
                }
            }
            return Optional.of(new Finding(DiagnosisKind.ZERO_SAMPLES, everySample
                    ? "every sample's gradient is zero where the reference's is not: this parameter's contribution is"
                    + " missing (its layer not hooked, its gradient never written, or taken from a detached tensor)"
                    : subject() + " zero where the reference's are not: their contribution is missing (e.g. those"
                    + " samples dropped by a mask, a padding rule or an index bound)"));
        }

        Optional<Finding> scaled() {
            double dot = 0, squares = 0;
            for (int i : bad) {
                double[] c = f.candidateRow(i), r = f.referenceRow(i);
                for (int k = 0; k < c.length; k++) {
                    dot += c[k] * r[k];
                    squares += r[k] * r[k];
                }
            }
            if (!(squares > 0)) {
                return Optional.empty();
            }
            double s = dot / squares;
            boolean seen = false;
            for (int i : bad) {
                double[] target = times(f.referenceRow(i), s);
                if (matchesOwnReference(i) || !matches(i, target, Math.abs(s) * f.referenceNorm()[i], s)) {
                    return Optional.empty();
                }
                seen |= visible(i, target, s);
            }
            Optional<Factor> clean = Factor.clean(s, batch, Math.max(CLEAN_RELATIVE, 10 * rtol));
            if (!seen || (bad.size() == 1 && clean.isEmpty())) {
                return Optional.empty();  // one sample with an odd factor: a coincidence, not a cause
            }
            Factor factor = clean.orElseGet(() -> Factor.other(s));
            return Optional.of(new Finding(DiagnosisKind.SCALED, subject() + " " + factor.phrase() + ": "
                    + factor.explanation()));
        }

        Optional<Finding> transposed() {
            if (f.referenceTransposed() == null) {
                return Optional.empty();
            }
            boolean seen = false;
            for (int i : bad) {
                double[] target = f.referenceTransposedRow(i);
                // No norm: the reference's is over the projected elements, the transposed ones are others.
                if (matchesOwnReference(i) || !matches(i, target, Double.NaN, 1)) {
                    return Optional.empty();
                }
                seen |= visible(i, target, 1);
            }
            if (!seen) {
                return Optional.empty();
            }
            boolean square = shape.get(0).equals(shape.get(1));
            String what = square ? "the reference's transposed"
                    : "the reference's transposed (" + shape.get(1) + " x " + shape.get(0) + ") and reshaped to the"
                    + " parameter's " + shape.get(0) + " x " + shape.get(1);
            return Optional.of(new Finding(DiagnosisKind.TRANSPOSED, subject() + " " + what + ": the sampler builds the gradient in the transposed layout (e.g."
                    + " activations x backprops where the weight is [out, in], backprops x activations)"));
        }

        Optional<Finding> sameGradient() {
            if (bad.size() < 2) {
                return Optional.empty();
            }
            int first = bad.get(0);
            for (int i : bad) {
                if (!(Math.abs(f.candidateNorm()[i] - f.candidateNorm()[first]) <= normTolerance(i, 1))) {
                    return Optional.empty();
                }
            }
            double[] mean = new double[f.projections()];
            for (int j = 0; j < batch; j++) {
                double[] r = f.referenceRow(j);
                for (int k = 0; k < mean.length; k++) {
                    mean[k] += r[k] / batch;
                }
            }
            String who = everySample ? "every sample holds the same gradient, "
                    : Probes.describeSamples(bad) + " all hold the same gradient, ";
            String instead = " instead of each sample's own";
            if (allMatch(mean)) {
                return Optional.of(new Finding(DiagnosisKind.SAME_GRADIENT_EVERY_SAMPLE, who + "the batch mean of the"
                        + " reference's per-sample gradients: the sampler hands out the batch gradient (what one"
                        + " backward of a batch-mean loss gives)" + instead));
            }
            if (allMatch(times(mean, batch))) {
                return Optional.of(new Finding(DiagnosisKind.SAME_GRADIENT_EVERY_SAMPLE, who + "the batch sum of the"
                        + " reference's per-sample gradients: the sampler hands out the batch gradient (what one"
                        + " backward of a batch-sum loss gives)" + instead));
            }
            double[] shared = new double[f.projections()];
            for (int i : bad) {
                double[] c = f.candidateRow(i);
                for (int k = 0; k < shared.length; k++) {
                    shared[k] += c[k] / bad.size();
                }
            }
            if (allMatch(shared)) {
                return Optional.of(new Finding(DiagnosisKind.SAME_GRADIENT_EVERY_SAMPLE, who + "neither the batch mean"
                        + " nor the batch sum of the reference's: the sampler gives every sample one gradient"
                        + instead));
            }
            return Optional.empty();
        }

        private boolean allMatch(double[] target) {
            boolean seen = false;
            for (int i : bad) {
                if (matchesOwnReference(i) || !matches(i, target, Double.NaN, 1)) {
                    return false;
                }
                seen |= visible(i, target, 1);
            }
            return seen;
        }

        Optional<Finding> permuted() {
            Map<Integer, Set<Integer>> sources = new HashMap<>();
            for (int i : bad) {
                if (matchesOwnReference(i)) {
                    return Optional.empty();
                }
                Set<Integer> from = new HashSet<>();
                for (int j = 0; j < batch; j++) {
                    double[] r = f.referenceRow(j);
                    if (j != i && visible(i, r, 1) && matches(i, r, f.referenceNorm()[j], 1)) {
                        from.add(j);
                    }
                }
                if (from.isEmpty()) {
                    return Optional.empty();
                }
                sources.put(i, from);
            }
            return Optional.of(new Finding(DiagnosisKind.SAMPLES_PERMUTED, describePermutation(sources)));
        }

        /** The most regular order consistent with the sources found (ties: samples with equal gradients). */
        private String describePermutation(Map<Integer, Set<Integer>> sources) {
            if (bad.size() == 2 && sources.get(bad.get(0)).contains(bad.get(1))
                    && sources.get(bad.get(1)).contains(bad.get(0))) {
                return "samples " + bad.get(0) + " and " + bad.get(1) + " hold each other's gradients (swapped): the"
                        + " sampler's sample index is wrong for them (e.g. a sort or gather of the batch not undone)";
            }
            if (bad.stream().allMatch(i -> sources.get(i).contains(batch - 1 - i))) {
                return "the batch is reversed: sample i holds sample " + (batch - 1) + " - i's gradient (an index"
                        + " counted from the end, or a flipped batch dimension)";
            }
            for (int k = 1; k < batch; k++) {
                int shift = k;
                if (bad.stream().allMatch(i -> sources.get(i).contains(Math.floorMod(i - shift, batch)))) {
                    String rel = shift <= batch / 2 ? "i - " + shift : "i + " + (batch - shift);
                    return "sample i holds sample " + rel + "'s gradient (the batch rolled or shifted by "
                            + (shift <= batch / 2 ? shift : shift - batch) + ", modulo B = " + batch + "): an"
                            + " off-by-" + Math.min(shift, batch - shift) + " sample index, or samples taken"
                            + " along the wrong dimension";
                }
            }
            Map<Integer, Integer> pairs = pairUp(sources);
            if (pairs != null) {
                return "samples are swapped in pairs (" + pairs.entrySet().stream().filter(e -> e.getKey() < e.getValue())
                        .limit(MAPPINGS_SHOWN).map(e -> e.getKey() + " <-> " + e.getValue())
                        .collect(Collectors.joining(", ")) + (pairs.size() / 2 > MAPPINGS_SHOWN ? ", ..." : "")
                        + "): the sampler's sample order is not the batch's";
            }
            return "samples hold other samples' gradients (" + bad.stream().limit(MAPPINGS_SHOWN)
                    .map(i -> i + " holds " + sources.get(i).stream().min(Integer::compare).orElseThrow() + "'s")
                    .collect(Collectors.joining(", ")) + (bad.size() > MAPPINGS_SHOWN ? ", ..." : "")
                    + "): the sampler's sample order is not the batch's (e.g. time-first data through a batch-first"
                    + " sampler, or a shuffled batch)";
        }

        /** An involution over the bad samples consistent with the sources, or null. */
        private Map<Integer, Integer> pairUp(Map<Integer, Set<Integer>> sources) {
            Map<Integer, Integer> pairs = new HashMap<>();
            for (int i : bad) {
                if (pairs.containsKey(i)) {
                    continue;
                }
                Optional<Integer> partner = sources.get(i).stream().sorted()
                        .filter(j -> !pairs.containsKey(j) && sources.containsKey(j) && sources.get(j).contains(i))
                        .findFirst();
                if (partner.isEmpty()) {
                    return null;
                }
                pairs.put(i, partner.get());
                pairs.put(partner.get(), i);
            }
            return pairs;
        }

        /** "every sample's gradient is" / "sample 3's gradient is" / "the gradients of samples 2, 5 are". */
        private String subject() {
            if (everySample) {
                return "every sample's gradient is";
            }
            return bad.size() == 1 ? "sample " + bad.get(0) + "'s gradient is"
                    : "the gradients of " + Probes.describeSamples(bad) + " are";
        }
    }

    private static double[] times(double[] v, double s) {
        double[] out = new double[v.length];
        for (int k = 0; k < v.length; k++) {
            out[k] = v[k] * s;
        }
        return out;
    }

    /** A factor by which a candidate differs from the reference, in words. */
    record Factor(String phrase, String explanation) {
        private static final String MEAN_SUM = "the sampler treats the loss as a mean where it is a sum (or the"
                + " reverse; a per-sample gradient is that of the sample's own loss, for reduction mean B times the"
                + " sample's share of the batch-mean gradient: Opacus's convention)";
        private static final String TWICE = "a contribution is counted twice (e.g. a hook that fires twice, or"
                + " accumulates onto an earlier result, as in Opacus issue #511)";
        private static final String HALF = "half of it is missing or it is divided by 2 (e.g. one of two uses of a"
                + " shared layer left out)";
        private static final String SIGN = "a sign error (a negated loss, backprop or gradient)";
        private static final String OTHER = "one constant factor for all of them: a scale applied wrongly (a loss"
                + " weight, a normalization, a learning rate)";

        private static final String REF = " the reference's";

        /** The clean constant s is (B, 1/B, 2, 1/2, -1, n, 1/n, with a sign), within {@code relative}. */
        static Optional<Factor> clean(double s, int batch, double relative) {
            double size = Math.abs(s);
            String sign = s < 0 ? "-" : "";
            String explainSign = s < 0 ? "a sign error, and " : "";
            if (near(size, batch, relative)) {
                String also = batch == 2 ? " (or " + TWICE + ")" : "";
                return Optional.of(new Factor(sign + "B = " + sign + batch + " times" + REF, explainSign + MEAN_SUM
                        + also));
            }
            if (near(size, 1.0 / batch, relative)) {
                return Optional.of(new Factor(sign + "1/B = " + sign + "1/" + batch + " of" + REF, explainSign
                        + MEAN_SUM));
            }
            if (near(s, -1, relative)) {
                return Optional.of(new Factor(REF.trim() + " with the opposite sign", SIGN));
            }
            if (near(size, 2, relative)) {
                return Optional.of(new Factor((s < 0 ? "-2 times" : "twice") + REF, explainSign + TWICE));
            }
            if (near(size, 0.5, relative)) {
                return Optional.of(new Factor((s < 0 ? "-1/2 of" : "half") + REF, explainSign + HALF));
            }
            for (int n = 3; n <= 4 * batch; n++) {
                if (near(size, n, relative)) {
                    return Optional.of(new Factor(sign + n + " times" + REF, explainSign + OTHER));
                }
                if (near(size, 1.0 / n, relative)) {
                    return Optional.of(new Factor(sign + "1/" + n + " of" + REF, explainSign + OTHER));
                }
            }
            return Optional.empty();
        }

        static Factor other(double s) {
            return new Factor(String.format(Locale.ROOT, "%.4g", s) + " times" + REF, (s < 0 ? "a sign error, and "
                    : "") + OTHER);
        }

        private static boolean near(double value, double target, double relative) {
            return Math.abs(value - target) <= relative * Math.abs(target);
        }
    }
}
