package dev.psg4j.check;

import dev.psg4j.BadInputException;

import java.util.List;

/**
 * How a clipped sum was clipped (DESIGN §1), with Opacus's formulas: flat clipping scales sample
 * i's whole gradient by min(1, C / (‖gᵢ‖ + 1e-6)) ({@code DPOptimizer.clip_and_accumulate});
 * per-layer clipping scales parameter p of sample i by min(1, C_p / (‖g_{i,p}‖ + 1e-6))
 * ({@code DPPerLayerOptimizer}), one threshold per trainable parameter in
 * {@code named_parameters()} order (a tied parameter once). {@link #perLayer(double)} splits one C
 * the way Opacus's examples do, C / sqrt(P) each, so that the whole gradient's norm stays at most C.
 *
 * @param mode       flat or per-layer
 * @param thresholds flat: {C}; per-layer: {C} to split, or one per trainable parameter
 */
public record Clipping(ClippingMode mode, List<Double> thresholds) {
    public Clipping {
        BadInputException.requireNonNull(mode, "clipping mode", "ClippingMode.FLAT or ClippingMode.PER_LAYER");
        BadInputException.requireNonNull(thresholds, "thresholds", "the max grad norm C (or one per parameter)");
        thresholds = List.copyOf(thresholds);
        if (thresholds.isEmpty()) {
            throw new BadInputException("give a clipping threshold: the max grad norm C of the DP optimizer");
        }
        for (Double t : thresholds) {
            if (t == null || !(t > 0) || Double.isInfinite(t)) {
                throw new BadInputException("a clipping threshold (max grad norm) must be finite and > 0, got " + t
                        + ": give the max_grad_norm your DP optimizer used (e.g. 1.0)");
            }
        }
        if (mode == ClippingMode.FLAT && thresholds.size() != 1) {
            throw new BadInputException("flat clipping takes one threshold C, got " + thresholds.size()
                    + ": use per-layer clipping for one threshold per parameter");
        }
    }

    /** Flat clipping at C (Opacus's default, {@code clipping="flat"}). */
    public static Clipping flat(double maxGradNorm) {
        return new Clipping(ClippingMode.FLAT, List.of(maxGradNorm));
    }

    /** Per-layer clipping with C split as Opacus's examples split it: C / sqrt(P) for each of the P parameters. */
    public static Clipping perLayer(double maxGradNorm) {
        return new Clipping(ClippingMode.PER_LAYER, List.of(maxGradNorm));
    }

    /** Per-layer clipping with one threshold per trainable parameter (named_parameters() order, a tied one once). */
    public static Clipping perLayerThresholds(List<Double> thresholds) {
        return new Clipping(ClippingMode.PER_LAYER, thresholds);
    }

    /** Whether one C is to be split over the parameters (per-layer with a single threshold). */
    public boolean split() {
        return mode == ClippingMode.PER_LAYER && thresholds.size() == 1;
    }
}
