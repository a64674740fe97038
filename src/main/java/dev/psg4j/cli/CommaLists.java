package dev.psg4j.cli;

import dev.psg4j.BadInputException;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/** Options that take a comma list ({@code --batch 1,8,32}): every entry parsed, a bad one named in one line. */
final class CommaLists {
    private CommaLists() {
    }

    /**
     * The entries of {@code text}, each parsed by {@code parse} (which throws a BadInputException
     * naming the entry); an empty entry is refused, saying what {@code option} takes ({@code expected}).
     */
    static <T> List<T> of(String option, String text, String expected, Function<String, T> parse) {
        List<T> out = new ArrayList<>();
        for (String entry : text.split(",", -1)) {
            if (entry.isBlank()) {
                throw new BadInputException(option + " '" + text + "' has an empty entry: give " + expected);
            }
            out.add(parse.apply(entry.strip()));
        }
        return out;
    }

    /** One entry that must be a whole number of at least 1. */
    static long positiveLong(String option, String entry) {
        long value;
        try {
            value = Long.parseLong(entry);
        } catch (NumberFormatException e) {
            throw new BadInputException(option + ": '" + entry + "' is not a whole number; give a comma list of "
                    + "whole numbers of at least 1, like 1,8,32");
        }
        if (value < 1) {
            throw new BadInputException(option + ": " + value + " is below 1; give a comma list of whole numbers of "
                    + "at least 1, like 1,8,32");
        }
        return value;
    }

    /** One entry that must be a whole number from 1 to Integer.MAX_VALUE. */
    static int positiveInt(String option, String entry) {
        long value = positiveLong(option, entry);
        if (value > Integer.MAX_VALUE) {
            throw new BadInputException(option + ": " + value + " is too large; give at most " + Integer.MAX_VALUE);
        }
        return (int) value;
    }
}
