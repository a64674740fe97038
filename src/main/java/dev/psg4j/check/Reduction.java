package dev.psg4j.check;

import java.util.Locale;

/** How a loss reduces over the batch. The per-sample gradient uses the same reduction (DESIGN §1). */
public enum Reduction {
    SUM(0), MEAN(1);

    private final int code;

    Reduction(int code) {
        this.code = code;
    }

    /** The code the native core uses. */
    public int code() {
        return code;
    }

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
