package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;

/**
 * How a sketch-mode check projected (DESIGN §1): the {@code seed} of its weights (rerun with it to
 * reproduce the check), the number of {@code projections} K, the weights' distribution, the pass
 * zone's {@code pass_fraction} ρ (the most the pass threshold may be, in units of a typical sample's
 * tolerance) and {@code noise_multiplier} κ (the threshold over a parameter's median residual),
 * the {@code reference_precision} of the projections' forward and backwards ("double", or "float"
 * for a model that cannot run in double), and what it spent: batched {@code forwards} and
 * {@code backwards}, and the parameter comparisons ({@code exact_params}) decided by the reference
 * because their residual was not in the pass zone.
 */
@JsonPropertyOrder({"seed", "projections", "weights", "pass_fraction", "noise_multiplier", "reference_precision", "forwards", "backwards",
        "exact_params"})
public record SketchSummary(
        long seed,
        int projections,
        String weights,
        @JsonProperty("pass_fraction") double passFraction,
        @JsonProperty("noise_multiplier") double noiseMultiplier,
        @JsonProperty("reference_precision") String referencePrecision,
        long forwards,
        long backwards,
        @JsonProperty("exact_params") long exactParams) {
    /** The weights every sketch draws, as reports name them. */
    public static final String WEIGHTS = "±(1+U), U ~ Uniform[0,1), fair sign";
}
