package dev.psg4j.check;

import dev.psg4j.BadInputException;

import org.bytedeco.javacpp.annotation.Namespace;

import java.util.Locale;

/**
 * Which element-wise criterion a check applies to per-sample gradients: the Java side of
 * {@code psg4j::ToleranceRule} (compare.h), which JavaCPP maps across the bridge by {@link #value}.
 * <ul>
 * <li>{@code ROUNDING} (the default): {@code |candidate - reference| <= atol + rtol·|reference| + c·ρ},
 *     where ρ is the reference's own rounding level for that parameter and sample, measured on the
 *     check's work (a few samples computed in double as well) and c = 4: a correct float32
 *     candidate of a model whose gradients are long sums passes, and an element off by a few
 *     rounding levels still fails.
 * <li>{@code ALLCLOSE}: exactly torch.allclose, as Opacus's check: {@code |candidate - reference| <=
 *     atol + rtol·|reference|}, the reference in the model's precision.
 * </ul>
 * An instance the bridge returns is not one of the constants: use {@link #intern()}.
 */
@Namespace("psg4j")
public enum ToleranceRule {
    ROUNDING(0), ALLCLOSE(1);

    public final int value;

    ToleranceRule(int value) {
        this.value = value;
    }

    ToleranceRule(ToleranceRule e) {
        this.value = e.value;
    }

    /** The constant with this {@link #value}. */
    public ToleranceRule intern() {
        for (ToleranceRule e : values()) {
            if (e.value == value) {
                return e;
            }
        }
        return this;
    }

    /** The name in reports and on the command line: "rounding" or "allclose". */
    public String label() {
        return intern().name().toLowerCase(Locale.ROOT);
    }

    /** "rounding" or "allclose" (any case); anything else is a BadInputException. */
    public static ToleranceRule named(String name) {
        BadInputException.requireNonNull(name, "tolerance rule", "rounding or allclose");
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "rounding" -> ROUNDING;
            case "allclose" -> ALLCLOSE;
            default -> throw new BadInputException("unknown tolerance rule '" + name + "': use rounding (the default: "
                    + "allclose widened by the measured float rounding) or allclose (torch.allclose, as Opacus)");
        };
    }

    @Override
    public String toString() {
        return intern().name();
    }
}
