package dev.psg4j.check;

import dev.psg4j.BadInputException;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * How a check compares a candidate with the reference (DESIGN §1).
 * <ul>
 *   <li>{@code EXACT}: every element of every sample against the microbatch reference (B backward
 *       passes per reduction);</li>
 *   <li>{@code SKETCH}: K random projections Σᵢ wᵢ·Gᵢ against ∇θ Σᵢ wᵢ·Lᵢ (one batched forward, K
 *       backwards for both reductions), parameters whose residual is not at rounding level decided
 *       exactly; needs the probes (a batch-independent, deterministic model). See
 *       {@link PerSampleCheck} for the guarantee.</li>
 * </ul>
 */
public enum CheckMode {
    EXACT, SKETCH;

    /** The name on the command line and in reports: "exact" or "sketch". */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static CheckMode named(String name) {
        String key = name.strip().toLowerCase(Locale.ROOT);
        return Arrays.stream(values()).filter(m -> m.label().equals(key)).findFirst().orElseThrow(() ->
                new BadInputException("unknown check mode '" + name + "': use "
                        + Arrays.stream(values()).map(CheckMode::label).collect(Collectors.joining(" or "))));
    }
}
