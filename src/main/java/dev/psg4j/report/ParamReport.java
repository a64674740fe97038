package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;

import java.util.List;

/**
 * The verdict on one parameter for one reduction. {@code shape} is the expected [B, *shape];
 * {@code candidate_shape} what the candidate gave (null when missing). Errors are maxima over the
 * compared elements (null when nothing was compared): {@code max_rel_err} divides by max(|reference|, atol). {@code worst_sample} is
 * the sample whose worst element is furthest outside tolerance (null when nothing was compared).
 * The {@code sample_*} lists hold the same maxima per sample (B entries, index = sample; null when
 * nothing was compared), over the sample's finite elements: {@code sample_max_tol_ratio} > 1 means
 * the sample is outside tolerance (a sample with NaN/Inf elements is in {@code bad_samples} whatever its ratio).
 * {@code aliases}: the other names of a tied parameter (one tensor under several names), absent
 * from the JSON when the parameter is not tied. In sketch mode {@code sketch_zone} says where the
 * sketch put the parameter ("pass": decided by the sketch, its per-sample fields and errors null;
 * "undecided" or "fail": decided by the reference, every field filled) and
 * {@code sketch_residual_ratio} its largest residual in units of the pass threshold; both are
 * absent in exact mode. {@code rounding_level} is the reference's own rounding level ρ for the
 * parameter (its largest over the samples, in the gradients' units) and
 * {@code sample_rounding_level} ρ per sample, where it was measured (always under the rounding
 * rule, which widens each element's tolerance by c·ρ; under the allclose rule only for parameters
 * that failed); both absent elsewhere.
 */
@JsonPropertyOrder({"name", "shape", "passed", "max_abs_err", "max_rel_err", "worst_sample", "bad_samples",
        "non_finite", "status", "candidate_shape", "max_tol_ratio", "sample_max_abs_err", "sample_max_rel_err",
        "sample_max_tol_ratio", "aliases", "sketch_zone", "sketch_residual_ratio", "rounding_level",
        "sample_rounding_level"})
public record ParamReport(
        String name,
        List<Long> shape,
        boolean passed,
        @JsonProperty("max_abs_err") Double maxAbsErr,
        @JsonProperty("max_rel_err") Double maxRelErr,
        @JsonProperty("worst_sample") Integer worstSample,
        @JsonProperty("bad_samples") List<Integer> badSamples,
        @JsonProperty("non_finite") boolean nonFinite,
        ParamStatus status,
        @JsonProperty("candidate_shape") List<Long> candidateShape,
        @JsonProperty("max_tol_ratio") Double maxTolRatio,
        @JsonProperty("sample_max_abs_err") List<Double> sampleMaxAbsErr,
        @JsonProperty("sample_max_rel_err") List<Double> sampleMaxRelErr,
        @JsonProperty("sample_max_tol_ratio") List<Double> sampleMaxTolRatio,
        @JsonInclude(JsonInclude.Include.NON_EMPTY) List<String> aliases,
        @JsonProperty("sketch_zone") @JsonInclude(JsonInclude.Include.NON_NULL) SketchZone sketchZone,
        @JsonProperty("sketch_residual_ratio") @JsonInclude(JsonInclude.Include.NON_NULL) Double sketchResidualRatio,
        @JsonProperty("rounding_level") @JsonInclude(JsonInclude.Include.NON_NULL) Double roundingLevel,
        @JsonProperty("sample_rounding_level") @JsonInclude(JsonInclude.Include.NON_NULL)
        List<Double> sampleRoundingLevel) {
    public ParamReport {
        aliases = aliases == null ? List.of() : List.copyOf(aliases);
    }

    /** A parameter without rounding levels (as before schema 3). */
    public ParamReport(String name, List<Long> shape, boolean passed, Double maxAbsErr, Double maxRelErr,
                       Integer worstSample, List<Integer> badSamples, boolean nonFinite, ParamStatus status,
                       List<Long> candidateShape, Double maxTolRatio, List<Double> sampleMaxAbsErr,
                       List<Double> sampleMaxRelErr, List<Double> sampleMaxTolRatio, List<String> aliases,
                       SketchZone sketchZone, Double sketchResidualRatio) {
        this(name, shape, passed, maxAbsErr, maxRelErr, worstSample, badSamples, nonFinite, status, candidateShape,
                maxTolRatio, sampleMaxAbsErr, sampleMaxRelErr, sampleMaxTolRatio, aliases, sketchZone,
                sketchResidualRatio, null, null);
    }

    /** A parameter an exact comparison decided (no sketch fields). */
    public ParamReport(String name, List<Long> shape, boolean passed, Double maxAbsErr, Double maxRelErr,
                       Integer worstSample, List<Integer> badSamples, boolean nonFinite, ParamStatus status,
                       List<Long> candidateShape, Double maxTolRatio, List<Double> sampleMaxAbsErr,
                       List<Double> sampleMaxRelErr, List<Double> sampleMaxTolRatio, List<String> aliases) {
        this(name, shape, passed, maxAbsErr, maxRelErr, worstSample, badSamples, nonFinite, status, candidateShape,
                maxTolRatio, sampleMaxAbsErr, sampleMaxRelErr, sampleMaxTolRatio, aliases, null, null);
    }

    /** This report with the sketch's zone and residual ratio. */
    public ParamReport withSketch(SketchZone zone, double residualRatio) {
        return new ParamReport(name, shape, passed, maxAbsErr, maxRelErr, worstSample, badSamples, nonFinite, status,
                candidateShape, maxTolRatio, sampleMaxAbsErr, sampleMaxRelErr, sampleMaxTolRatio, aliases, zone,
                residualRatio, roundingLevel, sampleRoundingLevel);
    }

    /** This report with its rounding levels (per sample; the parameter's is their largest). */
    public ParamReport withRounding(List<Double> perSample) {
        double largest = perSample.stream().mapToDouble(Double::doubleValue).max().orElse(0);
        return new ParamReport(name, shape, passed, maxAbsErr, maxRelErr, worstSample, badSamples, nonFinite, status,
                candidateShape, maxTolRatio, sampleMaxAbsErr, sampleMaxRelErr, sampleMaxTolRatio, aliases, sketchZone,
                sketchResidualRatio, largest, List.copyOf(perSample));
    }
}
