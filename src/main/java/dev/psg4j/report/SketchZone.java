package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonValue;

import org.bytedeco.javacpp.annotation.Namespace;

/**
 * Where a sketch put a parameter: the Java side of {@code psg4j::SketchZone} (compare.h), which
 * JavaCPP maps across the bridge by {@link #value}. {@code PASS}: every element of every
 * projection at rounding level, decided by the sketch; {@code FAIL}: some residual beyond what
 * allclose could allow in aggregate; {@code UNDECIDED}: in between. The last two are decided by
 * the reference. An instance the bridge returns is not one of the constants: use {@link #intern()}.
 */
@Namespace("psg4j")
public enum SketchZone {
    PASS(0), UNDECIDED(1), FAIL(2);

    public final int value;

    SketchZone(int value) {
        this.value = value;
    }

    SketchZone(SketchZone e) {
        this.value = e.value;
    }

    /** The constant with this {@link #value}. */
    public SketchZone intern() {
        for (SketchZone e : values()) {
            if (e.value == value) {
                return e;
            }
        }
        return this;
    }

    /** The name in reports: "pass", "undecided", "fail". */
    @JsonValue
    public String label() {
        return intern().name().toLowerCase(java.util.Locale.ROOT);
    }

    @Override
    public String toString() {
        return intern().name();
    }
}
