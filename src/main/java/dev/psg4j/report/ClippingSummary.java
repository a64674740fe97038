package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;

import java.util.List;
import java.util.Map;

/**
 * How a clipped-sum check clipped: {@code mode} "flat" or "per_layer" (Opacus's names),
 * {@code max_grad_norm} C (per-layer: the L2 norm of the thresholds, what Opacus's
 * DPPerLayerOptimizer reports as its max_grad_norm), {@code thresholds} each parameter's C_p (flat:
 * C for each), {@code epsilon} the 1e-6 of the factor min(1, C / (‖g‖ + 1e-6)), and per reduction
 * the samples the reference clipped (some factor below 1).
 */
@JsonPropertyOrder({"mode", "max_grad_norm", "thresholds", "epsilon", "clipped_samples"})
public record ClippingSummary(
        String mode,
        @JsonProperty("max_grad_norm") double maxGradNorm,
        Map<String, Double> thresholds,
        double epsilon,
        @JsonProperty("clipped_samples") Map<String, List<Integer>> clippedSamples) {
    /** Opacus's epsilon in C / (‖g‖ + 1e-6). */
    public static final double EPSILON = 1e-6;
}
