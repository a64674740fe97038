package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonValue;

import java.util.Locale;

/** What went wrong with one parameter (DESIGN §5). */
public enum FailureKind {
    VALUE, SHAPE, MISSING_PARAM, EXTRA_PARAM, NON_FINITE;

    @JsonValue
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
