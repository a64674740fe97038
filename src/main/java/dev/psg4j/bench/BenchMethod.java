package dev.psg4j.bench;

import dev.psg4j.BadInputException;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** What {@code psg4j bench} times per suite model; each is one {@code @Benchmark} of {@link SuiteBenchmark}. */
public enum BenchMethod {
    /** The vmap engine's per-sample gradients. */
    VMAP,
    /** The microbatch engine's (the reference's) per-sample gradients. */
    MICROBATCH,
    /** A full check of the vmap engine, one reduction, probes included. */
    CHECK,
    /** One plain batched backward, no per-sample gradients: the floor the others are measured against. */
    BACKWARD,
    /** The probes alone (finite values, determinism, exhaustive batch independence): 2⌈log₂B⌉ VJPs and 3 forwards. */
    PROBE;

    /** The name used on the command line, in reports and as the benchmark method's name. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static BenchMethod named(String name) {
        String key = name.strip().toLowerCase(Locale.ROOT);
        return Arrays.stream(values()).filter(m -> m.label().equals(key)).findFirst().orElseThrow(() ->
                new BadInputException("unknown method '" + name + "': use a comma list of "
                        + Arrays.stream(values()).map(BenchMethod::label).collect(Collectors.joining(", "))));
    }
}
