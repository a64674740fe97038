package dev.psg4j.check;

import dev.psg4j.bridge.NativeCore.ClippedSumView;
import dev.psg4j.report.ParamStatus;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.DiagnosisKind;
import dev.psg4j.report.Failure;
import dev.psg4j.report.FailureKind;
import dev.psg4j.report.ParamReport;
import dev.psg4j.report.ReductionReport;

import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Turns a native clipped-sum comparison of one reduction into its report, failures and diagnoses.
 * An element passes when |s_cand - s_ref| <= atol + rtol·Σᵢ|fᵢ·gᵢ| (element-wise; see
 * {@link PerSampleCheck#runClippedSum}); the per-sample fields of a parameter are null (a sum has
 * no samples), the failure names the parameter and its worst element.
 */
final class ClippedSumVerdicts {
    private static final int MAX_ABS = 0, MAX_REL = 1, TOL_RATIO = 2, BAD = 3, CAND_NON_FINITE = 4, REF_NON_FINITE = 5,
            WORST = 6, WORST_CAND = 7, WORST_REF = 8, FIELDS = 9;

    private ClippedSumVerdicts() {
    }

    static ReductionReport read(ClippedSumView view, Reduction reduction, List<Failure> failures,
                                List<Diagnosis> diagnoses) {
        double[] stats = values(view::stats);
        List<ParamReport> params = new ArrayList<>();
        List<String> names = new ArrayList<>();
        for (long p = 0; p < view.param_count(); p++) {
            names.add(view.name(p));
            params.add(param(view, p, stats, reduction.label(), failures));
        }
        for (long k = 0; k < view.match_count(); k++) {
            List<String> matched = new ArrayList<>();
            for (long m = 0; m < view.match_param_count(k); m++) {
                matched.add(names.get(Math.toIntExact(view.match_param(k, m))));
            }
            List<Integer> samples = new ArrayList<>();
            for (long m = 0; m < view.match_sample_count(k); m++) {
                samples.add(Math.toIntExact(view.match_sample(k, m)));
            }
            diagnoses.add(new Diagnosis(DiagnosisKind.of(view.match_kind(k)), matched.get(0), samples, reduction.label() + ": "
                    + view.match_explanation(k) + " (it reproduces the candidate's " + String.join(", ", matched)
                    + (samples.isEmpty() ? ")" : "; the samples whose factor it changes: " + samples + ")")));
        }
        return new ReductionReport(reduction.label(), params.stream().allMatch(ParamReport::passed), params);
    }

    /** The parameters' thresholds, by the candidate's names. */
    static Map<String, Double> thresholds(ClippedSumView view) {
        Map<String, Double> out = new LinkedHashMap<>();
        for (long p = 0; p < view.param_count(); p++) {
            out.put(view.name(p), view.threshold(p));
        }
        return out;
    }

    /** The samples the reference clipped: some factor below 1. */
    static List<Integer> clippedSamples(ClippedSumView view) {
        double[] factors = values(view::factors);
        int batch = Math.toIntExact(view.batch_size());
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            for (int p = 0; p < view.param_count(); p++) {
                if (factors[p * batch + i] < 1) {
                    out.add(i);
                    break;
                }
            }
        }
        return out;
    }

    private static ParamReport param(ClippedSumView view, long p, double[] stats, String reduction,
                                     List<Failure> failures) {
        String name = view.name(p);
        List<String> aliases = new ArrayList<>();
        for (long k = 0; k < view.alias_count(p); k++) {
            aliases.add(view.alias(p, k));
        }
        List<Long> shape = new ArrayList<>();
        for (long d = 0; d < view.rank(p); d++) {
            shape.add(view.dim(p, d));
        }
        int row = Math.toIntExact(p * FIELDS);
        long bad = (long) stats[row + BAD];
        long candNonFinite = (long) stats[row + CAND_NON_FINITE], refNonFinite = (long) stats[row + REF_NON_FINITE];
        boolean nonFinite = candNonFinite + refNonFinite > 0;
        if (bad > 0) {
            long elements = shape.stream().reduce(1L, (a, b) -> a * b);
            String where = reduction + " / " + name + ": ";
            String element = "element " + index(shape, (long) stats[row + WORST]);
            String message = refNonFinite > 0
                    ? where + "the reference's clipped sum has " + refNonFinite + " NaN/Inf element(s): the model or loss "
                    + "is not finite on some sample"
                    : candNonFinite > 0
                    ? where + "the candidate clipped sum has " + candNonFinite + " NaN/Inf element(s) of " + elements
                    : where + bad + " of " + elements + " elements of the clipped sum differ from the reference's (worst: "
                    + element + ", " + NormVerdicts.fmt(stats[row + WORST_CAND]) + " vs "
                    + NormVerdicts.fmt(stats[row + WORST_REF]) + "; max |difference| "
                    + NormVerdicts.fmt(stats[row + MAX_ABS]) + ", " + NormVerdicts.fmt(stats[row + TOL_RATIO])
                    + "x the tolerance atol + rtol·Σ|factor·g|)";
            failures.add(new Failure(reduction, name, null, nonFinite ? FailureKind.NON_FINITE : FailureKind.VALUE,
                    message));
        }
        return new ParamReport(name, shape, bad == 0, stats[row + MAX_ABS], stats[row + MAX_REL], null, List.of(),
                nonFinite, ParamStatus.COMPARED, shape, stats[row + TOL_RATIO], null, null, null, aliases);
    }

    /** A flat index as [i, j, ...] in {@code shape}. */
    private static String index(List<Long> shape, long flat) {
        long[] at = new long[shape.size()];
        for (int d = shape.size() - 1; d >= 0; d--) {
            at[d] = flat % shape.get(d);
            flat /= shape.get(d);
        }
        return java.util.Arrays.toString(at);
    }

    private static double[] values(Consumer<Tensor> fill) {
        try (Tensor t = new Tensor()) {
            fill.accept(t);
            double[] out = new double[Math.toIntExact(t.numel())];
            if (out.length > 0) {
                t.data_ptr_double().capacity(out.length).get(out);
            }
            return out;
        }
    }
}
