package dev.psg4j.check;

import dev.psg4j.BadInputException;

/**
 * The allclose part of the element-wise criterion: |candidate - reference| <= atol + rtol * |reference|,
 * widened by the reference's own rounding level under {@link ToleranceRule#ROUNDING} (the default),
 * exactly torch.allclose under {@link ToleranceRule#ALLCLOSE}.
 */
public record Tolerance(double atol, double rtol) {
    /** Opacus's defaults. */
    public static final Tolerance DEFAULT = new Tolerance(1e-5, 1e-4);

    public Tolerance {
        if (!(atol >= 0) || !(rtol >= 0) || Double.isInfinite(atol) || Double.isInfinite(rtol)) {
            throw new BadInputException("tolerances must be finite and >= 0, got atol=" + atol + ", rtol=" + rtol);
        }
    }
}
