package dev.psg4j.check;

import dev.psg4j.BadInputException;

/**
 * The LibTorch thread counts psg4j accepts: 1 to 4 × the available processors. More only
 * oversubscribes the machine, and an absurd count makes OpenMP fail to allocate its threads (or
 * hang starting them), so it is refused before it reaches native code.
 */
public final class Threads {
    private static final int PER_PROCESSOR = 4;

    private Threads() {
    }

    /** The largest thread count accepted on this machine. */
    public static int max() {
        return PER_PROCESSOR * Runtime.getRuntime().availableProcessors();
    }

    /** {@code threads}, when in [1, {@link #max()}]; else a BadInputException naming {@code option}. */
    public static int checked(int threads, String option) {
        if (threads < 1 || threads > max()) {
            throw new BadInputException(option + " must be between 1 and " + max() + " (" + PER_PROCESSOR + " × the "
                    + Runtime.getRuntime().availableProcessors() + " available processors), got " + threads
                    + ": give a thread count in that range (the processor count is usually best)");
        }
        return threads;
    }
}
