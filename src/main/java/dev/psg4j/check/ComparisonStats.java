package dev.psg4j.check;

import dev.psg4j.bridge.NativeCore.ComparisonView;

import org.bytedeco.pytorch.Tensor;

/**
 * A comparison's per-sample statistics [param, sample, field], moved out of native code in one
 * call; the fields are {@code psg4j::SampleStats}'s, in its order.
 */
record ComparisonStats(double[] values, long batch, int fields) {
    static final int MAX_ABS = 0, MAX_REL = 1, TOL_RATIO = 2, BAD = 3, CAND_NON_FINITE = 4, REF_NON_FINITE = 5,
            ROUNDING_LEVEL = 6, EXCESS = 7, REFERENCE_RMS = 8, REFERENCE_MAX = 9;

    static ComparisonStats of(ComparisonView view) {
        try (Tensor t = new Tensor()) {
            view.stats(t);
            double[] values = new double[Math.toIntExact(t.numel())];
            if (values.length > 0) {
                t.data_ptr_double().capacity(values.length).get(values);
            }
            return new ComparisonStats(values, view.batch_size(), ComparisonView.stat_fields());
        }
    }

    double get(long p, long sample, int field) {
        return values[Math.toIntExact((p * batch + sample) * fields + field)];
    }
}
