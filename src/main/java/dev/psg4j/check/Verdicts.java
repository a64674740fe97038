package dev.psg4j.check;

import dev.psg4j.bridge.NativeCore.ComparisonView;
import dev.psg4j.report.Failure;
import dev.psg4j.report.FailureKind;
import dev.psg4j.report.ParamReport;
import dev.psg4j.report.ParamStatus;
import dev.psg4j.report.SketchZone;
import dev.psg4j.report.ReductionReport;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** Turns the native comparison of one reduction into its report and its failures. */
final class Verdicts {
    /** Per parameter, at most this many per-sample failures are listed; bad_samples lists all. */
    static final int SAMPLE_FAILURES_PER_PARAM = 20;

    private static final int MAX_ABS = ComparisonStats.MAX_ABS, MAX_REL = ComparisonStats.MAX_REL,
            TOL_RATIO = ComparisonStats.TOL_RATIO, BAD = ComparisonStats.BAD,
            CAND_NON_FINITE = ComparisonStats.CAND_NON_FINITE, REF_NON_FINITE = ComparisonStats.REF_NON_FINITE;

    private Verdicts() {
    }

    /** One reduction's report from {@code view} and its statistics ({@code stats}, read once per view). */
    static ReductionReport read(ComparisonView view, ComparisonStats stats, Reduction reduction, List<Failure> failures) {
        List<ParamReport> params = new ArrayList<>();
        for (long p = 0; p < view.param_count(); p++) {
            params.add(readParam(view, stats, p, reduction.label(), failures));
        }
        return new ReductionReport(reduction.label(), params.stream().allMatch(ParamReport::passed), params);
    }

    private static ParamReport readParam(ComparisonView view, ComparisonStats stats, long p, String reduction,
                                         List<Failure> failures) {
        String name = view.name(p);
        List<String> aliases = new ArrayList<>();
        for (long k = 0; k < view.alias_count(p); k++) {
            aliases.add(view.alias(p, k));
        }
        ParamStatus status = view.status(p).intern();
        List<Long> expected = shape(view.expected_rank(p), d -> view.expected_dim(p, d));
        List<Long> candidate = shape(view.candidate_rank(p), d -> view.candidate_dim(p, d));
        String where = reduction + " / " + name;
        switch (status) {
            case MISSING -> {
                failures.add(new Failure(reduction, name, null, FailureKind.MISSING_PARAM, where
                        + ": the candidate has no gradient for this trainable parameter (expected shape " + expected
                        + "); a grad sampler must return every parameter with requires_grad"
                        + (aliases.isEmpty() ? "" : " (this one is tied: any of its names will do, e.g. "
                                + aliases.get(0) + ")")));
                return structural(name, expected, null, status, aliases);
            }
            case EXTRA -> {
                failures.add(new Failure(reduction, name, null, FailureKind.EXTRA_PARAM, where
                        + ": the candidate has a gradient for '" + name + "', which is not a trainable parameter "
                        + "of the model (a frozen one, requires_grad=False, has no per-sample gradient: leave it out); "
                        + "check the names (named_parameters() style, e.g. '0.weight')"));
                return structural(name, null, candidate, status, aliases);
            }
            case SHAPE -> {
                failures.add(new Failure(reduction, name, null, FailureKind.SHAPE, where + ": the candidate has shape "
                        + candidate + " but per-sample gradients must be " + expected
                        + " (batch first, then the parameter's shape)" + shapeHint(expected, candidate)));
                return structural(name, expected, candidate, status, aliases);
            }
            case COMPARED -> {
                if (!view.sketched(p)) {
                    return compared(view.batch_size(), stats, p, name, aliases, reduction, expected, candidate,
                            view.rounding_measured(p), failures);
                }
                SketchZone zone = view.sketch_zone(p).intern();
                ParamReport decided = zone == SketchZone.PASS
                        ? sketchPassed(name, expected, candidate, aliases)
                        : compared(view.batch_size(), stats, p, name, aliases, reduction, expected, candidate,
                            view.rounding_measured(p), failures);
                return decided.withSketch(zone, view.sketch_residual_ratio(p));
            }
            default -> throw new IllegalStateException("unknown parameter status " + status);
        }
    }

    private static ParamReport compared(long batch, ComparisonStats stats, long p, String name, List<String> aliases,
                                        String reduction, List<Long> expected, List<Long> candidate,
                                        boolean roundingMeasured, List<Failure> failures) {
        long elements = expected.stream().skip(1).reduce(1L, (a, b) -> a * b);
        double maxAbs = 0, maxRel = 0, worstRatio = -1;
        Integer worst = null;
        boolean nonFinite = false;
        List<Integer> bad = new ArrayList<>();
        List<Double> sampleAbs = new ArrayList<>(), sampleRel = new ArrayList<>(), sampleRatio = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            double abs = stats.get(p, i, MAX_ABS), rel = stats.get(p, i, MAX_REL), ratio = stats.get(p, i, TOL_RATIO);
            sampleAbs.add(abs);
            sampleRel.add(rel);
            sampleRatio.add(ratio);
            long badElements = (long) stats.get(p, i, BAD);
            long candNonFinite = (long) stats.get(p, i, CAND_NON_FINITE);
            long refNonFinite = (long) stats.get(p, i, REF_NON_FINITE);
            maxAbs = Math.max(maxAbs, abs);
            maxRel = Math.max(maxRel, rel);
            boolean sampleNonFinite = candNonFinite + refNonFinite > 0;
            double severity = sampleNonFinite ? Double.POSITIVE_INFINITY : ratio;
            if (severity > worstRatio) {
                worstRatio = severity;
                worst = i;
            }
            nonFinite |= sampleNonFinite;
            if (badElements > 0) {
                bad.add(i);
                if (bad.size() <= SAMPLE_FAILURES_PER_PARAM) {
                    failures.add(sampleFailure(reduction, name, i, elements, badElements, abs, rel, ratio,
                            candNonFinite, refNonFinite));
                }
            }
        }
        ParamReport report = new ParamReport(name, expected, bad.isEmpty(), maxAbs, maxRel, worst, bad, nonFinite,
                ParamStatus.COMPARED, candidate, Double.isInfinite(worstRatio) ? null : Math.max(worstRatio, 0),
                sampleAbs, sampleRel, sampleRatio, aliases);
        return roundingMeasured ? report.withRounding(sampleLevels(stats, p)) : report;
    }

    private static List<Double> sampleLevels(ComparisonStats stats, long p) {
        List<Double> levels = new ArrayList<>();
        for (int i = 0; i < stats.batch(); i++) {
            levels.add(stats.get(p, i, ComparisonStats.ROUNDING_LEVEL));
        }
        return levels;
    }

    /** Passed by the sketch: no per-sample statistics were computed, so those fields are null. */
    private static ParamReport sketchPassed(String name, List<Long> expected, List<Long> candidate,
                                            List<String> aliases) {
        return new ParamReport(name, expected, true, null, null, null, List.of(), false, ParamStatus.COMPARED, candidate, null,
                null, null, null, aliases);
    }

    private static Failure sampleFailure(String reduction, String name, int sample, long elements, long badElements,
                                         double abs, double rel, double ratio, long candNonFinite, long refNonFinite) {
        String where = reduction + " / " + name + " / sample " + sample + ": ";
        if (refNonFinite > 0) {
            return new Failure(reduction, name, sample, FailureKind.NON_FINITE, where + "the reference gradient itself "
                    + "has " + refNonFinite + " NaN/Inf element(s): the model or loss is not finite on this sample");
        }
        if (candNonFinite > 0) {
            return new Failure(reduction, name, sample, FailureKind.NON_FINITE, where + "the candidate has "
                    + candNonFinite + " NaN/Inf element(s) of " + elements + "; a per-sample gradient must be finite");
        }
        return new Failure(reduction, name, sample, FailureKind.VALUE, where + badElements + " of " + elements
                + " elements differ from the reference (max |candidate - reference| = " + fmt(abs)
                + ", max relative " + fmt(rel) + ", " + fmt(ratio) + "x the tolerance)");
    }

    private static ParamReport structural(String name, List<Long> expected, List<Long> candidate, ParamStatus status,
                                          List<String> aliases) {
        return new ParamReport(name, expected, false, null, null, null, List.of(), false, status, candidate, null,
                null, null, null, aliases);
    }

    private static String shapeHint(List<Long> expected, List<Long> candidate) {
        if (candidate.size() == expected.size() - 1 && candidate.equals(expected.subList(1, expected.size()))) {
            return "; it looks like a summed gradient with no batch dimension";
        }
        if (candidate.size() == expected.size() && candidate.stream().sorted().toList()
                .equals(expected.stream().sorted().toList())) {
            return "; it holds the right sizes in another order (a transposed or batch-last layout?)";
        }
        return "";
    }

    private static List<Long> shape(long rank, java.util.function.LongUnaryOperator dim) {
        List<Long> out = new ArrayList<>();
        for (long d = 0; d < rank; d++) {
            out.add(dim.applyAsLong(d));
        }
        return out;
    }

    private static String fmt(double v) {
        return String.format(Locale.ROOT, "%.3g", v);
    }
}
