package dev.psg4j.engine;

import dev.psg4j.BadInputException;

/** What random ops (dropout in train mode, {@code rand}) do under the vmap engine; torch.func's meanings. */
public enum Randomness {
    /** A random op is an {@link dev.psg4j.UnsupportedModelException} (torch.func's default). */
    ERROR(0),
    /** Every sample draws its own random numbers. */
    DIFFERENT(1),
    /** All samples share the same random numbers. */
    SAME(2);

    private final int code;

    Randomness(int code) {
        this.code = code;
    }

    /** The native code of this mode. */
    public int code() {
        return code;
    }

    /** The mode named {@code error}, {@code different} or {@code same} (any case). */
    public static Randomness named(String name) {
        for (Randomness r : values()) {
            if (r.name().equalsIgnoreCase(name)) {
                return r;
            }
        }
        throw new BadInputException("unknown randomness '" + name + "': use error, different or same");
    }
}
