package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.bridge.Natives;
import dev.psg4j.report.ParamStatus;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.DiagnosisKind;
import dev.psg4j.report.Failure;
import dev.psg4j.report.FailureKind;
import dev.psg4j.report.ParamReport;

import org.bytedeco.pytorch.LongArrayRef;
import org.bytedeco.pytorch.LongVector;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Norms-only candidates: a candidate's per-sample norms against the reference's, one
 * sample at a time, {@code |n_cand - n_ref| <= atol + rtol·n_ref} (torch.allclose on the norms;
 * NaN or Inf never matches), and the likely cause of a mismatch.
 */
final class NormVerdicts {
    /** The report's name of the whole-gradient norms (no parameter name has parentheses). */
    static final String WHOLE = "(whole gradient)";

    private NormVerdicts() {
    }

    /** One compared norm vector: the whole gradient's (parameter -1) or a parameter's, by the candidate's name. */
    record Entry(String name, int parameter, List<String> aliases, double[] values) {
    }

    /**
     * The candidate laid out against the model's trainable parameters ({@code names}: first names,
     * model order; {@code aliases}: first name → other names). Anything that is not one [B] tensor
     * under "" or one [B] tensor per trainable parameter is a BadInputException naming it.
     */
    static List<Entry> plan(Map<String, Tensor> candidate, List<String> names, Map<String, List<String>> aliases,
                            long batch) {
        if (candidate.isEmpty()) {
            throw new BadInputException("the norms candidate is empty: give one tensor [B] (each sample's whole-gradient "
                    + "norm) or {parameter name: Tensor[B]}");
        }
        candidate.forEach((name, t) -> requireNorms(name, t, batch));
        if (candidate.containsKey(NormSampler.WHOLE_GRADIENT)) {
            if (candidate.size() > 1) {
                throw new BadInputException("the norms candidate mixes a whole-gradient tensor (key \"\") with "
                        + "per-parameter entries: give one or the other");
            }
            return List.of(new Entry(WHOLE, -1, List.of(), doubles(candidate.get(NormSampler.WHOLE_GRADIENT))));
        }
        Map<String, Integer> parameterOf = new LinkedHashMap<>();
        for (int p = 0; p < names.size(); p++) {
            parameterOf.put(names.get(p), p);
            for (String alias : aliases.getOrDefault(names.get(p), List.of())) {
                parameterOf.put(alias, p);
            }
        }
        String[] given = new String[names.size()];
        for (String name : candidate.keySet()) {
            Integer p = parameterOf.get(name);
            if (p == null) {
                throw new BadInputException("the norms candidate has an entry '" + name + "', which is not a trainable "
                        + "parameter of the model (trainable: " + String.join(", ", names) + "); a frozen one has no "
                        + "gradient: leave it out");
            }
            if (given[p] != null) {
                throw new BadInputException("the norms candidate gives tied parameter '" + names.get(p) + "' twice (as '"
                        + given[p] + "' and '" + name + "'): one tensor has one norm per sample, give it once");
            }
            given[p] = name;
        }
        List<Entry> entries = new ArrayList<>();
        for (int p = 0; p < names.size(); p++) {
            if (given[p] == null) {
                throw new BadInputException("the norms candidate has no entry for trainable parameter '" + names.get(p)
                        + "': give one [B] tensor per trainable parameter, or one [B] tensor (key \"\") for the whole "
                        + "gradient");
            }
            List<String> others = new ArrayList<>();
            if (!given[p].equals(names.get(p))) {
                others.add(names.get(p));
            }
            for (String alias : aliases.getOrDefault(names.get(p), List.of())) {
                if (!alias.equals(given[p])) {
                    others.add(alias);
                }
            }
            entries.add(new Entry(given[p], p, others, doubles(candidate.get(given[p]))));
        }
        return entries;
    }

    private static void requireNorms(String name, Tensor t, long batch) {
        String label = name.isEmpty() ? "the norms tensor" : "the norms of '" + name + "'";
        Natives.requireLive(t, label);
        long[] shape;
        try (LongArrayRef sizes = t.sizes(); LongVector dims = sizes.vec()) {
            shape = dims.get();
        }
        if (shape.length != 1 || shape[0] != batch) {
            String hint = shape.length == 0 || (shape.length == 1 && shape[0] == 1)
                    ? ": one number for the batch, not one per sample?"
                    : shape.length > 1 && shape[0] == batch ? ": per-sample gradients? (check those with --candidate)" : "";
            throw new BadInputException(label + " has shape " + Arrays.toString(shape) + " but per-sample norms are [B] = ["
                    + batch + "], one per sample of the batch" + hint);
        }
        if (!t.is_floating_point()) {
            throw new BadInputException(label + " has dtype " + t.scalar_type() + ": norms are floating-point tensors");
        }
    }

    /** The values of a [n] tensor, as doubles. */
    static double[] doubles(Tensor t) {
        try (Tensor cpu = t.cpu(); Tensor d = cpu.to(torch.ScalarType.Double); Tensor c = d.contiguous()) {
            double[] out = new double[Math.toIntExact(c.numel())];
            if (out.length > 0) {
                c.data_ptr_double().capacity(out.length).get(out);
            }
            return out;
        }
    }

    /** The verdict on one entry against the reference norms {@code reference} ([B]). */
    static ParamReport compare(String reduction, Entry entry, double[] reference, Tolerance tolerance,
                               List<Failure> failures, List<Diagnosis> diagnoses) {
        double[] c = entry.values();
        int batch = reference.length;
        double maxAbs = 0, maxRel = 0, worstSeverity = -1;
        Integer worst = null;
        boolean nonFinite = false;
        List<Integer> bad = new ArrayList<>();
        List<Double> sampleAbs = new ArrayList<>(), sampleRel = new ArrayList<>(), sampleRatio = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            double r = reference[i];
            boolean finite = Double.isFinite(c[i]) && Double.isFinite(r);
            double diff = finite ? Math.abs(c[i] - r) : 0;
            double allowed = tolerance.atol() + tolerance.rtol() * Math.abs(r);
            double rel = diff / Math.max(Math.abs(r), tolerance.atol()), ratio = diff / allowed;
            sampleAbs.add(diff);
            sampleRel.add(rel);
            sampleRatio.add(ratio);
            maxAbs = Math.max(maxAbs, diff);
            maxRel = Math.max(maxRel, rel);
            nonFinite |= !finite;
            double severity = finite ? ratio : Double.POSITIVE_INFINITY;
            if (severity > worstSeverity) {
                worstSeverity = severity;
                worst = i;
            }
            if (!finite || !(diff <= allowed)) {
                bad.add(i);
                if (bad.size() <= Verdicts.SAMPLE_FAILURES_PER_PARAM) {
                    failures.add(sampleFailure(reduction, entry.name(), i, c[i], r, diff, ratio, finite));
                }
            }
        }
        if (!bad.isEmpty() && !nonFinite) {
            diagnose(entry.parameter() < 0 ? null : entry.name(), c, reference, bad, tolerance, diagnoses);
        }
        List<Long> shape = List.of((long) batch);
        return new ParamReport(entry.name(), shape, bad.isEmpty(), maxAbs, maxRel, worst, bad, nonFinite, ParamStatus.COMPARED,
                shape, Double.isInfinite(worstSeverity) ? null : Math.max(worstSeverity, 0), sampleAbs, sampleRel,
                sampleRatio, entry.aliases());
    }

    private static Failure sampleFailure(String reduction, String name, int sample, double c, double r, double diff,
                                         double ratio, boolean finite) {
        String where = reduction + " / " + name + " / sample " + sample + ": ";
        if (!finite) {
            return new Failure(reduction, name, sample, FailureKind.NON_FINITE, where + (Double.isFinite(r)
                    ? "the candidate norm is " + c + "; a per-sample norm must be finite"
                    : "the reference gradient itself is not finite: the model or loss is not finite on this sample"));
        }
        return new Failure(reduction, name, sample, FailureKind.VALUE, where + "norm " + fmt(c) + " but the reference's is "
                + fmt(r) + (r > 0 ? " (" + fmt(c / r) + "x" : " (") + "; |difference| " + fmt(diff) + ", " + fmt(ratio)
                + "x the tolerance atol + rtol·norm)");
    }

    // ---- likely causes: one test per planted-bug kind, tried in order, the first that fits is named ----

    private static void diagnose(String param, double[] c, double[] r, List<Integer> bad, Tolerance tol,
                                 List<Diagnosis> diagnoses) {
        int batch = r.length;
        String what = param == null ? "norm" : "norm of " + param;
        if (batch > 1 && allScaled(c, r, 1.0 / batch, tol)) {
            diagnoses.add(new Diagnosis(DiagnosisKind.NORMS_MEAN_SUM_CONFUSION, param, List.copyOf(bad), "every " + what + " is 1/B (1/"
                    + batch + ") of the reference's: norms of the batch-mean loss's gradients, without the ×B that makes "
                    + "them per-sample gradients (the mean/sum convention)"));
            return;
        }
        if (batch > 1 && allScaled(c, r, batch, tol)) {
            diagnoses.add(new Diagnosis(DiagnosisKind.NORMS_MEAN_SUM_CONFUSION, param, List.copyOf(bad), "every " + what + " is B ("
                    + batch + ") times the reference's: the ×B of a mean loss applied to a sum loss, or twice"));
            return;
        }
        if (allSquared(c, r, tol)) {
            diagnoses.add(new Diagnosis(DiagnosisKind.NORMS_SQUARED, param, List.copyOf(bad), "every " + what + " is the square of the "
                    + "reference's: squared norms (Σ g², what ghost clipping accumulates) were given as norms; take "
                    + "their square root"));
            return;
        }
        if (bad.size() >= 2 && permuted(c, r, bad, tol)) {
            diagnoses.add(new Diagnosis(DiagnosisKind.NORMS_PERMUTED, param, List.copyOf(bad), "samples " + list(bad) + " have one "
                    + "another's " + what + "s: the samples are out of order (swapped, shifted or reversed)"));
            return;
        }
        double k = commonRatio(c, r, bad, tol);
        if (Double.isFinite(k)) {
            String samples = bad.size() == batch ? "every sample's " + what + " is " : (bad.size() == 1 ? "sample "
                    : "samples ") + list(bad) + (bad.size() == 1 ? " has a " : " have a ") + what + " ";
            diagnoses.add(new Diagnosis(DiagnosisKind.SCALED_NORMS, param, List.copyOf(bad), samples + fmt(k) + "x the reference's"
                    + (bad.size() == batch ? "" : " while the others match: that gradient is scaled (counted twice, "
                    + "or scaled by another sample's factor)")));
        }
    }

    private static boolean allScaled(double[] c, double[] r, double k, Tolerance tol) {
        for (int i = 0; i < r.length; i++) {
            if (!(Math.abs(c[i] - k * r[i]) <= tol.atol() + tol.rtol() * k * Math.abs(r[i]))) {
                return false;
            }
        }
        return true;
    }

    private static boolean allSquared(double[] c, double[] r, Tolerance tol) {
        for (int i = 0; i < r.length; i++) {
            double square = r[i] * r[i];
            if (!(Math.abs(c[i] - square) <= tol.atol() + tol.rtol() * square)) {
                return false;
            }
        }
        return true;
    }

    /** Whether each bad sample's candidate is the reference of another bad sample, each used once. */
    private static boolean permuted(double[] c, double[] r, List<Integer> bad, Tolerance tol) {
        boolean[] used = new boolean[r.length];
        for (int i : bad) {
            boolean found = false;
            for (int j : bad) {
                if (j != i && !used[j] && Math.abs(c[i] - r[j]) <= tol.atol() + tol.rtol() * Math.abs(r[j])) {
                    used[j] = true;
                    found = true;
                    break;
                }
            }
            if (!found) {
                return false;
            }
        }
        return true;
    }

    /** The one factor k with c ≈ k·r on every bad sample (NaN when there is none, or it is 0). */
    private static double commonRatio(double[] c, double[] r, List<Integer> bad, Tolerance tol) {
        int first = bad.get(0);
        if (!(Math.abs(r[first]) > tol.atol())) {
            return Double.NaN;
        }
        double k = c[first] / r[first];
        if (!(Math.abs(k) > 0)) {
            return Double.NaN;
        }
        for (int i : bad) {
            if (!(Math.abs(c[i] - k * r[i]) <= tol.atol() + tol.rtol() * Math.abs(k * r[i]))) {
                return Double.NaN;
            }
        }
        return k;
    }

    private static String list(List<Integer> samples) {
        return String.join(", ", samples.stream().limit(12).map(String::valueOf).toList())
                + (samples.size() > 12 ? ", … (" + samples.size() + " in all)" : "");
    }

    static String fmt(double v) {
        return String.format(Locale.ROOT, "%.4g", v);
    }
}
