package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;

import java.util.List;

/**
 * How a check measured its reference's rounding level (README, "Tolerance"): what the reference
 * in the model's precision was compared with on the rounding {@code samples} — "double" (the same
 * samples computed in double, the model cast whole) or "perturbed parameters" (its parameters
 * moved by one ulp: a model that cannot run in double, or one in double already) — and
 * {@code multiple} c, the number of rounding levels the rounding rule adds to an element's
 * tolerance.
 */
@JsonPropertyOrder({"measured_against", "samples", "multiple"})
public record RoundingSummary(
        @JsonProperty("measured_against") String measuredAgainst,
        List<Long> samples,
        double multiple) {
    public RoundingSummary {
        samples = List.copyOf(samples);
    }
}
