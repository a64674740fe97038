package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonValue;

import java.util.Locale;

/** Where a probe found NaN or Inf first: in an input or in the model's output. */
public enum NonFiniteSite {
    INPUT, OUTPUT;

    /** The name in reports and in the native probe's view. */
    @JsonValue
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The constant named {@code label} ({@link #label()}). */
    public static NonFiniteSite of(String label) {
        return Labels.of(NonFiniteSite.class, label);
    }
}
