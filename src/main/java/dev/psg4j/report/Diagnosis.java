package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonPropertyOrder;

import java.util.List;

/** A likely cause found by looking at the failures together (e.g. a whole parameter scaled by 1/B). */
@JsonPropertyOrder({"kind", "param", "samples", "message"})
public record Diagnosis(String kind, String param, List<Integer> samples, String message) {
}
