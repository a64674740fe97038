package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;

/** One failure: a parameter of a reduction, the sample where it shows (null when not per sample). */
@JsonPropertyOrder({"reduction", "param", "sample", "kind", "message"})
public record Failure(String reduction, String param, @JsonInclude(JsonInclude.Include.ALWAYS) Integer sample,
                      FailureKind kind, String message) {
}
