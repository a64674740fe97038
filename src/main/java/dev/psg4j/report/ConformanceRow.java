package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;

import java.util.List;

/**
 * One row of a conformance run: a configuration at one batch size for one reduction. For a passed
 * row the errors are those of its parameter furthest towards the tolerance; for a failed row, of
 * its worst failing parameter ({@code param}, with the {@code sample} where it is worst and the
 * {@code failure_kind}). Skipped and error rows say why in {@code message}; their numbers are null.
 *
 * @param layerKinds the configuration's layer kinds (torch.nn class names)
 * @param seconds    the row's wall time (building, the sampler and the reference)
 */
@JsonPropertyOrder({"configuration", "reduction", "batch_size", "verdict", "layer_kinds", "max_abs_err", "max_rel_err",
        "max_tol_ratio", "param", "sample", "failure_kind", "message", "seconds"})
public record ConformanceRow(
        String configuration,
        String reduction,
        @JsonProperty("batch_size") long batchSize,
        ConformanceVerdict verdict,
        @JsonProperty("layer_kinds") List<String> layerKinds,
        @JsonProperty("max_abs_err") @JsonInclude(JsonInclude.Include.ALWAYS) Double maxAbsErr,
        @JsonProperty("max_rel_err") @JsonInclude(JsonInclude.Include.ALWAYS) Double maxRelErr,
        @JsonProperty("max_tol_ratio") @JsonInclude(JsonInclude.Include.ALWAYS) Double maxTolRatio,
        @JsonInclude(JsonInclude.Include.ALWAYS) String param,
        @JsonInclude(JsonInclude.Include.ALWAYS) Integer sample,
        @JsonProperty("failure_kind") @JsonInclude(JsonInclude.Include.ALWAYS) FailureKind failureKind,
        @JsonInclude(JsonInclude.Include.ALWAYS) String message,
        double seconds) {
    public ConformanceRow {
        layerKinds = layerKinds == null ? List.of() : List.copyOf(layerKinds);
    }

    /** "name, sum, B=3": how the row is named in tables and tests. */
    public String label() {
        return configuration + ", " + reduction + ", B=" + batchSize;
    }
}
