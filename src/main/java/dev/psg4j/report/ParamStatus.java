package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonValue;

import org.bytedeco.javacpp.annotation.Namespace;

import java.util.Locale;

/**
 * What the comparison of one parameter could do: the Java side of {@code psg4j::ParamStatus}
 * (compare.h), which JavaCPP maps across the bridge by {@link #value}. {@code COMPARED}: names and
 * shapes agree and the values were compared; {@code MISSING}: the model has the parameter, the
 * candidate does not; {@code EXTRA}: the candidate has it, the model does not; {@code SHAPE}: the
 * candidate's tensor is not [B, *parameter shape]. An instance the bridge returns is not one of
 * the constants: use {@link #intern()}.
 */
@Namespace("psg4j")
public enum ParamStatus {
    COMPARED(0), MISSING(1), EXTRA(2), SHAPE(3);

    public final int value;

    ParamStatus(int value) {
        this.value = value;
    }

    ParamStatus(ParamStatus e) {
        this.value = e.value;
    }

    /** The constant with this {@link #value}. */
    public ParamStatus intern() {
        for (ParamStatus e : values()) {
            if (e.value == value) {
                return e;
            }
        }
        return this;
    }

    /** The name in reports: "compared", "missing", "extra", "shape". */
    @JsonValue
    public String label() {
        return intern().name().toLowerCase(Locale.ROOT);
    }

    @Override
    public String toString() {
        return intern().name();
    }
}
