package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonValue;

import java.util.Locale;

/** The verdict on one row of a conformance run. */
public enum ConformanceVerdict {
    /** The sampler's per-sample gradients matched the reference. */
    PASSED,
    /** They did not (a value, shape, missing or extra parameter, non-finite). */
    FAILED,
    /** The configuration holds a layer kind the sampler does not claim ({@code supportsLayer} false). */
    SKIPPED,
    /** The sampler (or building the configuration) threw. */
    ERROR;

    @JsonValue
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
