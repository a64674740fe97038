package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * What {@code psg4j probe --json} writes. {@code leaks}: reported sample → every other sample its
 * output depends on (at most {@code --probe-samples} entries); {@code affected_samples}: every
 * sample whose output is known to depend on others; {@code source_samples}: every sample some other
 * sample's output depends on; {@code differs_alone}: samples whose output changes when run alone
 * (all B are run); {@code dense}: the leaks could not all be decoded from the partition passes or
 * named within the bound; {@code leaks_complete}: every flagged sample is in {@code leaks};
 * {@code passes}: what the probe ran. The independence fields are null when the probe stopped
 * before them: NaN/Inf ({@code non_finite_in}: "input" or "output", {@code non_finite_samples}),
 * or a forward that is not deterministic.
 */
@JsonPropertyOrder({"passed", "batch_size", "deterministic", "max_abs_diff", "batch_independent", "method", "leaks",
        "differs_alone", "mixing_module", "affected_samples", "source_samples", "dense", "leaks_complete",
        "alone_route", "non_finite_in", "non_finite_samples", "passes", "probe_ms", "diagnoses"})
public record ProbeReport(
        boolean passed,
        @JsonProperty("batch_size") long batchSize,
        boolean deterministic,
        @JsonProperty("max_abs_diff") double maxAbsDiff,
        @JsonProperty("batch_independent") Boolean batchIndependent,
        ProbeMethod method,
        Map<Integer, List<Integer>> leaks,
        @JsonProperty("differs_alone") List<Integer> differsAlone,
        @JsonProperty("mixing_module") String mixingModule,
        @JsonProperty("affected_samples") List<Integer> affectedSamples,
        @JsonProperty("source_samples") List<Integer> sourceSamples,
        Boolean dense,
        @JsonProperty("leaks_complete") Boolean leaksComplete,
        @JsonProperty("alone_route") AloneRoute aloneRoute,
        @JsonProperty("non_finite_in") NonFiniteSite nonFiniteIn,
        @JsonProperty("non_finite_samples") List<Integer> nonFiniteSamples,
        Passes passes,
        @JsonProperty("probe_ms") double probeMs,
        List<Diagnosis> diagnoses) {

    /**
     * What the probe ran: batched forwards, input-VJPs (each one batched backward), and the value
     * route's forwards of samples alone (one vmapped forward, or one per sample where vmap cannot
     * run the model).
     */
    @JsonPropertyOrder({"batched_forwards", "vjps", "vmapped_forwards", "sample_forwards"})
    public record Passes(
            @JsonProperty("batched_forwards") long batchedForwards,
            long vjps,
            @JsonProperty("vmapped_forwards") long vmappedForwards,
            @JsonProperty("sample_forwards") long sampleForwards) {
        @Override
        public String toString() {
            return batchedForwards + " batched forwards, " + vjps + " VJPs, "
                    + (sampleForwards > 0 ? sampleForwards + " one-sample forwards" : vmappedForwards + " vmapped forward");
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public void writeJson(Path file) {
        try {
            Files.writeString(file, toJson());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static ProbeReport fromJson(String json) {
        try {
            return JSON.readValue(json, ProbeReport.class);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("not a psg4j probe report: " + e.getOriginalMessage(), e);
        }
    }
}
