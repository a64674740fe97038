package dev.psg4j.cli;

import dev.psg4j.BadInputException;
import dev.psg4j.check.Reduction;

import java.util.List;
import java.util.Locale;

/** {@code --reduction sum|mean|both}, as every command that takes it reads it. */
final class ReductionOption {
    private ReductionOption() {
    }

    static List<Reduction> parse(String value) {
        return switch (value.toLowerCase(Locale.ROOT)) {
            case "sum" -> List.of(Reduction.SUM);
            case "mean" -> List.of(Reduction.MEAN);
            case "both" -> List.of(Reduction.SUM, Reduction.MEAN);
            default -> throw new BadInputException("unknown --reduction '" + value + "': use sum, mean or both");
        };
    }
}
