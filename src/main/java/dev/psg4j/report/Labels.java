package dev.psg4j.report;

import java.util.Locale;

/** Parses the lower-case labels that psg4j's enums have in reports and native views. */
final class Labels {
    private Labels() {
    }

    static <E extends Enum<E>> E of(Class<E> type, String label) {
        for (E e : type.getEnumConstants()) {
            if (e.name().toLowerCase(Locale.ROOT).equals(label)) {
                return e;
            }
        }
        throw new IllegalStateException("no " + type.getSimpleName() + " is labelled '" + label + "'");
    }
}
