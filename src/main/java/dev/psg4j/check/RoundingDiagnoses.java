package dev.psg4j.check;

import dev.psg4j.bridge.NativeCore.ComparisonView;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.DiagnosisKind;
import dev.psg4j.report.ParamReport;
import dev.psg4j.report.ParamStatus;
import dev.psg4j.report.ReductionReport;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Says when a parameter's failing differences are rounding, not a bug, from the per-sample
 * statistics of the exact comparison ({@link ComparisonStats}: each failing sample's excess, the
 * least widening of atol + rtol·|reference| that passes all its elements, its rounding level ρ and
 * its reference's largest magnitude):
 * <ul>
 * <li>{@code float_rounding}: under the allclose rule, every failing sample's excess is at most c·ρ
 *     (c = {@link ComparisonView#rounding_multiple()}): the rounding rule passes it;
 * <li>{@code candidate_precision}: the candidate is float16 or bfloat16, and every failing
 *     sample's excess is at most c times the rounding of that precision: u·max|reference| (the
 *     candidate's own representation, u its unit roundoff) plus ρ scaled from the reference's
 *     precision to the candidate's (a computation in that precision).
 * </ul>
 * A parameter with NaN/Inf is not rounding. At most one diagnosis per parameter.
 */
final class RoundingDiagnoses {
    private RoundingDiagnoses() {
    }

    /**
     * The diagnoses of one reduction's failing parameters ({@code stats}: the view's statistics);
     * {@code candidate}: the gradients compared, by name.
     */
    static List<Diagnosis> read(ComparisonView view, ComparisonStats stats, ReductionReport report, Tolerance tolerance,
                                ToleranceRule rule, Map<String, Tensor> candidate) {
        double multiple = ComparisonView.rounding_multiple();
        double referenceRoundoff = unitRoundoff(view.reference_precision());
        List<Diagnosis> out = new ArrayList<>();
        for (int p = 0; p < report.params().size(); p++) {
            ParamReport param = report.params().get(p);
            if (param.passed() || param.nonFinite() || param.status() != ParamStatus.COMPARED
                    || param.badSamples().isEmpty()) {
                continue;
            }
            String where = report.reduction() + " / " + param.name() + ": ";
            String precision = precisionOf(candidate.get(param.name()));
            double roundoff = unitRoundoff(precision);
            if (roundoff > referenceRoundoff && roundoff > 0) {
                double scale = roundoff / referenceRoundoff;
                int pp = p;
                double worst = worstRatio(stats, p, param.badSamples(),
                        i -> roundoff * stats.get(pp, i, ComparisonStats.REFERENCE_MAX)
                                + scale * stats.get(pp, i, ComparisonStats.ROUNDING_LEVEL));
                if (worst <= multiple) {
                    out.add(new Diagnosis(DiagnosisKind.CANDIDATE_PRECISION, param.name(), param.badSamples(), where
                            + "the candidate is " + precision + ", whose own rounding (unit roundoff " + fmt(roundoff)
                            + ", above rtol " + fmt(tolerance.rtol()) + ") explains every difference (each within "
                            + fmt(worst) + " times that rounding): the gradients are right to " + precision
                            + " precision; compute and save them in float32, or compare them at a tolerance of their "
                            + "precision (--rtol " + fmt(multiple * roundoff) + ")"));
                    continue;
                }
            }
            if (rule == ToleranceRule.ALLCLOSE && param.sampleRoundingLevel() != null) {
                int pp = p;
                double worst = worstRatio(stats, p, param.badSamples(),
                        i -> stats.get(pp, i, ComparisonStats.ROUNDING_LEVEL));
                if (worst <= multiple) {
                    out.add(new Diagnosis(DiagnosisKind.FLOAT_ROUNDING, param.name(), param.badSamples(), where
                            + "the differences are at " + view.reference_precision() + " rounding level: each is "
                            + "within allclose's tolerance plus " + fmt(worst) + " times the reference's own rounding "
                            + "(measured against " + view.rounding_yardstick() + "), as a correct candidate's are "
                            + "where gradient elements are long sums; the default tolerance rule (--tolerance "
                            + "rounding, ToleranceRule.ROUNDING) allows " + fmt(multiple) + " times that rounding"));
                }
            }
        }
        return out;
    }

    /** The largest excess / level over the failing samples (infinite where a level is 0). */
    private static double worstRatio(ComparisonStats stats, int p, List<Integer> bad,
                                     java.util.function.IntToDoubleFunction level) {
        double worst = 0;
        for (int i : bad) {
            double excess = stats.get(p, i, ComparisonStats.EXCESS);
            double allowed = level.applyAsDouble(i);
            worst = Math.max(worst, excess <= 0 ? 0 : allowed > 0 ? excess / allowed : Double.POSITIVE_INFINITY);
        }
        return worst;
    }

    private static String precisionOf(Tensor t) {
        if (t == null || t.isNull() || !t.defined()) {
            return "";
        }
        torch.ScalarType type = t.scalar_type().intern();
        return switch (type) {
            case Half -> "float16";
            case BFloat16 -> "bfloat16";
            case Float -> "float";
            case Double -> "double";
            default -> type.name().toLowerCase(Locale.ROOT);
        };
    }

    /** Unit roundoff of a precision by its name (the reference's "float", "half", ...; the candidate's "float16"). */
    static double unitRoundoff(String precision) {
        return switch (precision) {
            case "double" -> Math.scalb(1.0, -53);
            case "float" -> Math.scalb(1.0, -24);
            case "half", "float16" -> Math.scalb(1.0, -11);
            case "bfloat16" -> Math.scalb(1.0, -8);
            default -> 0;
        };
    }

    private static String fmt(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e6 ? Long.toString((long) v) : String.format(Locale.ROOT, "%.2g", v);
    }
}
