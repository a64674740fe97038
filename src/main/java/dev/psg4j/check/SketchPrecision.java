package dev.psg4j.check;

import dev.psg4j.BadInputException;

import org.bytedeco.javacpp.annotation.Namespace;

import java.util.Locale;

/**
 * The precision of a sketch check's reference projections for a model that runs in float: the Java
 * side of {@code psg4j::SketchPrecision} (sketch.h), which JavaCPP maps across the bridge by
 * {@link #value}.
 * <ul>
 * <li>{@code DOUBLE} (the default): one forward and K backwards in double, where the model can run
 *     in double. The pass window is a few rounding levels of the double reference, so an element
 *     wrong by more than that is caught with probability close to 1, and the sketch gives exact
 *     mode's verdict down to the tolerance.
 * <li>{@code FLOAT_FIRST}: the forward and backwards in the model's float precision; a parameter
 *     passes there when its residuals are within the float reference's own rounding (at most ρ typical
 *     tolerances), goes to the reference when it fails, and only what float leaves undecided is
 *     projected again in double. Several times cheaper on convolutions and attention on the CPU, at a
 *     weaker guarantee: an element wrong by M typical tolerances passes with probability up to
 *     (min|w| / M)<sup>K</sup>, about M<sup>-K</sup> (min|w|, the smallest weight magnitude, is about
 *     1 + 1/B) — for screening every training step, where a broken sampler is off by far more.
 * </ul>
 * An instance the bridge returns is not one of the constants: use {@link #intern()}.
 */
@Namespace("psg4j")
public enum SketchPrecision {
    DOUBLE(0), FLOAT_FIRST(1);

    public final int value;

    SketchPrecision(int value) {
        this.value = value;
    }

    SketchPrecision(SketchPrecision e) {
        this.value = e.value;
    }

    /** The constant with this {@link #value}. */
    public SketchPrecision intern() {
        for (SketchPrecision e : values()) {
            if (e.value == value) {
                return e;
            }
        }
        return this;
    }

    /** The name in reports and on the command line: "double" or "float-first". */
    public String label() {
        return intern().name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    /** "double" or "float-first" (any case); anything else is a BadInputException. */
    public static SketchPrecision named(String name) {
        BadInputException.requireNonNull(name, "sketch precision", "double or float-first");
        for (SketchPrecision p : values()) {
            if (p.label().equals(name.toLowerCase(Locale.ROOT))) {
                return p;
            }
        }
        throw new BadInputException("unknown sketch precision '" + name + "': use double (the default: projections "
                + "in double, exact mode's verdict) or float-first (projections in float, double only for what float "
                + "leaves undecided: cheaper, an element M tolerances off passes with probability up to about M^-K)");
    }

    @Override
    public String toString() {
        return intern().name();
    }
}
