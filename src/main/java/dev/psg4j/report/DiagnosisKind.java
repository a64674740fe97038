package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonValue;

import java.util.Locale;

/**
 * What a {@link Diagnosis} found (DESIGN §5); in JSON the lower-case name ({@code batch_mixing}, ...).
 * The first three come from the probes (the check then compares nothing); the others explain a
 * parameter's value failures, from the per-sample fingerprints of the exact comparison.
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
    ZERO_SAMPLES;

    @JsonValue
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
