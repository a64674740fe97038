package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonValue;

import java.util.Locale;

/** How the probe ran samples alone: one vmapped forward, one forward per sample, or not at all (the model cannot run one sample). */
public enum AloneRoute {
    VMAP, PER_SAMPLE, NONE;

    /** The name in reports and in the native probe's view. */
    @JsonValue
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The constant named {@code label} ({@link #label()}). */
    public static AloneRoute of(String label) {
        return Labels.of(AloneRoute.class, label);
    }
}
