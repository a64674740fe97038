package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonPropertyOrder;

import java.util.List;

/** The verdicts of one reduction ("sum" or "mean"). */
@JsonPropertyOrder({"reduction", "passed", "params"})
public record ReductionReport(String reduction, boolean passed, List<ParamReport> params) {
}
