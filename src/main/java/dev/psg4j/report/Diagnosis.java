package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonPropertyOrder;

import java.util.List;

/**
 * A likely cause found by looking at the results together (e.g. a whole parameter scaled by 1/B):
 * its kind, the parameter (or submodule) it concerns, the samples it explains, one line for a reader.
 */
@JsonPropertyOrder({"kind", "param", "samples", "message"})
public record Diagnosis(DiagnosisKind kind, String param, List<Integer> samples, String message) {
}
