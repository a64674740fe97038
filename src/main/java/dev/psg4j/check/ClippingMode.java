package dev.psg4j.check;

import org.bytedeco.javacpp.annotation.Namespace;

import java.util.Locale;

/**
 * How a DP optimizer clips per-sample gradients before summing them: the Java side of
 * {@code psg4j::ClippingMode} (clipped_sum.h), which JavaCPP maps across the bridge by
 * {@link #value}. {@code FLAT}: each sample's whole gradient by one threshold C (Opacus's
 * {@code DPOptimizer}, {@code clipping="flat"}); {@code PER_LAYER}: each parameter by its own
 * threshold (Opacus's {@code DPPerLayerOptimizer}, {@code clipping="per_layer"}).
 */
@Namespace("psg4j")
public enum ClippingMode {
    FLAT(0), PER_LAYER(1);

    public final int value;

    ClippingMode(int value) {
        this.value = value;
    }

    ClippingMode(ClippingMode e) {
        this.value = e.value;
    }

    /** The constant with this {@link #value} (what the bridge returns is not one of the constants). */
    public ClippingMode intern() {
        for (ClippingMode e : values()) {
            if (e.value == value) {
                return e;
            }
        }
        return this;
    }

    /** The name in reports, Opacus's: "flat" or "per_layer". */
    public String label() {
        return intern().name().toLowerCase(Locale.ROOT);
    }

    /** "flat", "per-layer" or "per_layer" (any case); anything else is a BadInputException. */
    public static ClippingMode named(String name) {
        dev.psg4j.BadInputException.requireNonNull(name, "clipping", "flat or per-layer");
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "flat" -> FLAT;
            case "per-layer", "per_layer" -> PER_LAYER;
            default -> throw new dev.psg4j.BadInputException("unknown clipping '" + name + "': use flat or per-layer");
        };
    }

    @Override
    public String toString() {
        return intern().name();
    }
}
