package dev.psg4j.engine;

import dev.psg4j.BadInputException;

import java.util.Map;
import java.util.TreeMap;

/**
 * The options given to a {@link GradSamplerProvider}: name → value as the user wrote it
 * ({@code --engine-option chunk-size=64}). The typed getters turn a malformed value into a
 * {@link BadInputException} naming the engine, the option and what to give.
 */
public record SamplerOptions(String engine, Map<String, String> values) {
    public SamplerOptions {
        BadInputException.requireNonNull(engine, "engine", "the engine's name");
        values = Map.copyOf(BadInputException.requireNonNull(values, "values", "a map of option values (may be empty)"));
    }

    /** No options. */
    public static SamplerOptions none(String engine) {
        return new SamplerOptions(engine, Map.of());
    }

    /** The option's value, or {@code fallback} when it was not given. */
    public String string(String name, String fallback) {
        return values.getOrDefault(name, fallback);
    }

    /** The option as a whole number in [min, max], or {@code fallback} when it was not given. */
    public long integer(String name, long fallback, long min, long max) {
        String value = values.get(name);
        if (value == null) {
            return fallback;
        }
        try {
            long parsed = Long.parseLong(value.trim());
            if (parsed >= min && parsed <= max) {
                return parsed;
            }
        } catch (NumberFormatException ignored) {
            // reported below with the range
        }
        String range = min == Long.MIN_VALUE && max == Long.MAX_VALUE ? "a whole number"
                : max == Long.MAX_VALUE ? "a whole number >= " + min : "a whole number in [" + min + ", " + max + "]";
        throw new BadInputException("engine " + engine + ": option " + name + "=" + value + " is not " + range
                + ": give e.g. --engine-option " + name + "=" + fallback);
    }

    /** The option as a boolean ({@code true}/{@code false}), or {@code fallback} when it was not given. */
    public boolean bool(String name, boolean fallback) {
        String value = values.get(name);
        if (value == null) {
            return fallback;
        }
        return switch (value.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "true" -> true;
            case "false" -> false;
            default -> throw new BadInputException("engine " + engine + ": option " + name + "=" + value
                    + " is not true or false");
        };
    }

    /** Refuses names the provider does not declare, listing the ones it does. */
    SamplerOptions requireKnown(Map<String, String> declared) {
        for (String name : values.keySet()) {
            if (!declared.containsKey(name)) {
                throw new BadInputException("engine " + engine + " has no option '" + name + "'"
                        + (declared.isEmpty() ? ": it takes none" : ": its options are " + new TreeMap<>(declared).keySet()));
            }
        }
        return this;
    }
}
