package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonValue;

import java.util.Locale;

/** How the batch-independence probe looked: by input gradients, by intermediate gradients (integer inputs, e.g. token ids) or by output values. */
public enum ProbeMethod {
    INPUT_GRADIENT, INTERMEDIATE_GRADIENT, VALUE;

    /** The name in reports and in the native probe's view. */
    @JsonValue
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The constant named {@code label} ({@link #label()}). */
    public static ProbeMethod of(String label) {
        return Labels.of(ProbeMethod.class, label);
    }
}
