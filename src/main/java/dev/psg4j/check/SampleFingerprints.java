package dev.psg4j.check;

import dev.psg4j.bridge.NativeCore.FingerprintView;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;

import java.util.function.Consumer;

/**
 * One compared parameter's per-sample fingerprints (native fingerprints.h), read out of a
 * {@link FingerprintView}: for sample i, {@link #projections} fixed random projections (weights
 * N(0, 1) on {@link #projected} of the parameter's {@link #elements} elements) of its candidate
 * gradient, of its reference gradient and, for a 2-D parameter, of the reference transposed and
 * reshaped to the parameter's shape; the L2 norms of both over the projected elements; and the
 * candidate's again as the scale of its projections (for their tolerance). Arrays are row-major [B, K] or [B].
 */
record SampleFingerprints(int batch, int projections, long elements, long projected, double[] candidate,
                          double[] reference, double[] referenceTransposed, double[] candidateNorm,
                          double[] referenceNorm, double[] candidateProjectedNorm) {

    static SampleFingerprints read(FingerprintView view, int batch) {
        return new SampleFingerprints(batch, Math.toIntExact(view.projections()), view.elements(), view.projected(),
                doubles(view::candidate), doubles(view::reference),
                view.has_transposed() ? doubles(view::reference_transposed) : null,
                doubles(view::candidate_norms), doubles(view::reference_norms),
                doubles(view::candidate_projected_norms));
    }

    /** The candidate's projections of sample i. */
    double[] candidateRow(int i) {
        return row(candidate, i);
    }

    double[] referenceRow(int i) {
        return row(reference, i);
    }

    /** Null unless the parameter is 2-D. */
    double[] referenceTransposedRow(int i) {
        return referenceTransposed == null ? null : row(referenceTransposed, i);
    }

    private double[] row(double[] values, int i) {
        double[] out = new double[projections];
        System.arraycopy(values, i * projections, out, 0, projections);
        return out;
    }

    private static double[] doubles(Consumer<Pointer> fill) {
        try (Tensor t = new Tensor()) {
            fill.accept(t);
            double[] values = new double[Math.toIntExact(t.numel())];
            if (values.length > 0) {
                t.data_ptr_double().capacity(values.length).get(values);
            }
            return values;
        }
    }
}
