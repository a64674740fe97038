package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonValue;

import java.util.Locale;

/**
 * What a {@link Diagnosis} found (DESIGN §5); in JSON the lower-case name ({@code batch_mixing}, ...).
 * The first three come from the probes (the check then compares nothing); the next five explain a
 * parameter's value failures, from the per-sample fingerprints of the exact comparison; the next two
 * say that a parameter's differences are rounding, the reference's own or the candidate's lower
 * precision; the rest explain failures of norms-only and clipped-sum candidates.
 */
public enum DiagnosisKind {
    /** A sample's output depends on other samples' inputs; param is where the mixing starts. */
    BATCH_MIXING,
    /** Two forwards of the same batch differ. */
    NON_DETERMINISTIC,
    /** NaN or Inf in an input sample or in the model's output for it. */
    NON_FINITE,
    /** The failing samples' gradients are one constant times the reference's (1/B, B, 2, -1, ...). */
    SCALED,
    /** The failing samples hold other samples' gradients (swapped, rolled, shifted, reversed). */
    SAMPLES_PERMUTED,
    /** The failing samples all hold one gradient (the batch mean or sum of the reference, or another). */
    SAME_GRADIENT_EVERY_SAMPLE,
    /** The failing samples' gradients are the reference's transposed (reshaped to the parameter's shape). */
    TRANSPOSED,
    /** The failing samples' gradients are zero where the reference's are not: a missing contribution. */
    ZERO_SAMPLES,

    /**
     * Every failing difference is within the rounding rule's c times the reference's own
     * floating-point rounding level: a correct candidate that the allclose rule fails.
     */
    FLOAT_ROUNDING,
    /** The candidate is float16 or bfloat16, and its own rounding explains every failing difference. */
    CANDIDATE_PRECISION,

    // Norms-only candidates: what the failing norms are.
    /** Every failing norm is B or 1/B times the reference's: the mean/sum convention. */
    NORMS_MEAN_SUM_CONFUSION,
    /** Every failing norm is the square of the reference's: squared norms given as norms. */
    NORMS_SQUARED,
    /** The failing samples hold other samples' norms. */
    NORMS_PERMUTED,
    /** The failing norms are one constant times the reference's. */
    SCALED_NORMS,

    // Clipped-sum candidates: the clipping bug that reproduces the failing parameters.
    /** The clip factor C/(‖g‖+1e-6) was not floored at 1. */
    CLIPPING_NOT_FLOORED,
    /** The sum is of unclipped per-sample gradients. */
    NOT_CLIPPED,
    /** The clip factor was C/‖g‖, without Opacus's + 1e-6. */
    CLIP_EPSILON_MISSING,
    /** The batch-mean loss's gradients were clipped before the ×B that makes them per-sample gradients. */
    CLIPPING_BEFORE_MEAN_SCALING,
    /** Each parameter was clipped at the whole C instead of its per-layer share. */
    PER_LAYER_THRESHOLDS_UNSPLIT,
    /** Each parameter was clipped at C/P instead of C/sqrt(P). */
    PER_LAYER_THRESHOLDS_SPLIT_LINEARLY,
    /** The whole gradient was clipped at once where per-layer clipping was asked. */
    CLIPPED_FLAT_NOT_PER_LAYER,
    /** Each parameter was clipped on its own where flat clipping was asked. */
    CLIPPED_PER_LAYER_NOT_FLAT,
    /** The clipped sum was divided by B (the optimizer's average, not the pre-noise sum). */
    CLIPPED_SUM_DIVIDED_BY_BATCH;

    @JsonValue
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The kind labelled {@code label} (as in JSON and in the native core's clipping-bug list). */
    public static DiagnosisKind of(String label) {
        return Labels.of(DiagnosisKind.class, label);
    }
}
