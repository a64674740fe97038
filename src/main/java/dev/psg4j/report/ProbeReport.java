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
 * What {@code psg4j probe --json} writes. {@code leaks}: probed sample → the other samples its
 * output depends on; {@code differs_alone}: probed samples whose output changes when run alone;
 * the independence fields are null when the forward is not deterministic (the independence probe
 * needs one that is).
 */
@JsonPropertyOrder({"passed", "batch_size", "deterministic", "max_abs_diff", "batch_independent", "method", "leaks",
        "differs_alone", "mixing_module", "diagnoses"})
public record ProbeReport(
        boolean passed,
        @JsonProperty("batch_size") long batchSize,
        boolean deterministic,
        @JsonProperty("max_abs_diff") double maxAbsDiff,
        @JsonProperty("batch_independent") Boolean batchIndependent,
        String method,
        Map<Integer, List<Integer>> leaks,
        @JsonProperty("differs_alone") List<Integer> differsAlone,
        @JsonProperty("mixing_module") String mixingModule,
        List<Diagnosis> diagnoses) {

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
