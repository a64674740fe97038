package dev.psg4j.check;

import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.Natives;

import org.bytedeco.pytorch.global.torch;

/**
 * LibTorch's intra-op thread count of the calling thread for the length of a check, and the
 * previous count restored after it. Set as the thread's own OpenMP count (bytedeco's build runs
 * ATen on OpenMP), not with torch.set_num_threads, which also changes the process-wide default
 * that threads started later take: a check changes nothing another thread can see.
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
        Natives.call(() -> NativeCore.set_intra_op_threads_of_this_thread(threads));
        return new IntraOpThreads(previous, true);
    }

    @Override
    public void close() {
        if (changed) {
            Natives.call(() -> NativeCore.set_intra_op_threads_of_this_thread(previous));
        }
    }
}
