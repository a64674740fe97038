package dev.psg4j.check;

import org.bytedeco.pytorch.global.torch;

/**
 * LibTorch's intra-op thread count for the length of a check, and the previous count restored
 * after it: a check leaves no process-wide change behind. Under OpenMP (bytedeco's build) the
 * count is the calling thread's.
 */
final class IntraOpThreads implements AutoCloseable {
    private final int previous;
    private final boolean changed;

    private IntraOpThreads(int previous, boolean changed) {
        this.previous = previous;
        this.changed = changed;
    }

    /** Sets {@code threads} (0: leave LibTorch's count as it is) until {@link #close}. */
    static IntraOpThreads set(int threads) {
        int previous = torch.get_num_threads();
        if (threads <= 0 || threads == previous) {
            return new IntraOpThreads(previous, false);
        }
        torch.set_num_threads(threads);
        return new IntraOpThreads(previous, true);
    }

    @Override
    public void close() {
        if (changed) {
            torch.set_num_threads(previous);
        }
    }
}
