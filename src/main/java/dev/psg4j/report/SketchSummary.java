package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;

/**
 * How a sketch-mode check projected (DESIGN §1): the {@code seed} of its weights (rerun with it to
 * reproduce the check), the number of {@code projections} K, the weights' distribution, the pass
 * zone's {@code pass_fraction} ρ (the most the pass threshold may be, in units of a typical sample's
 * tolerance) and {@code noise_multiplier} κ (the threshold over a parameter's median residual), the
 * {@code precision} asked ("double" or "float-first"), the {@code reference_precision} the projections'
 * forward and backwards ran in ("double"; "float" where the model cannot run in double or float first
 * decided every parameter; "float, then double" where float first left {@code double_params}
 * parameter comparisons to double projections), and what it spent: batched {@code forwards} and
 * {@code backwards}, and the parameter comparisons ({@code exact_params}) decided by the reference
 * because their residual was not in the pass zone.
 */
@JsonPropertyOrder({"seed", "projections", "weights", "pass_fraction", "noise_multiplier", "precision",
        "reference_precision", "forwards", "backwards", "double_params", "exact_params"})
public record SketchSummary(
        long seed,
        int projections,
        String weights,
        @JsonProperty("pass_fraction") double passFraction,
        @JsonProperty("noise_multiplier") double noiseMultiplier,
        String precision,
        @JsonProperty("reference_precision") String referencePrecision,
        long forwards,
        long backwards,
        @JsonProperty("double_params") long doubleParams,
        @JsonProperty("exact_params") long exactParams) {
    /** The weights every sketch draws, as reports name them. */
    public static final String WEIGHTS = "±(1+U), U ~ Uniform[0,1), fair sign";

    /** The reference_precision of projections that ran in float first or not, and in double or not. */
    public static String referencePrecision(boolean floatFirst, boolean inDouble) {
        if (floatFirst) {
            return inDouble ? "float, then double" : "float";
        }
        return inDouble ? "double" : "float";
    }
}
