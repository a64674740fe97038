package dev.psg4j.check;

import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.Natives;

/**
 * While open, OpenBLAS runs every product on one thread. Why: OpenBLAS splits a product over its
 * threads in a way that changes the result's last bits, and bytedeco's OpenBLAS (a pthreads build)
 * has one thread count for the whole process, with no per-thread or per-call setting. psg4j's own
 * computations (engines, reference, probes, sketch, norms, clipped sums, layer capture) hold one
 * each for their whole length, and {@link PerSampleCheck} holds one for each whole run, its
 * sampler included: so a result never depends on what other threads are doing at that moment, nor
 * on the machine's core count. Holds may nest and overlap on several threads: the first saves the
 * process's count, the last to close restores it; meanwhile the rest of the process's BLAS calls
 * run on one thread too (ATen's own intra-op threads, per thread, are untouched). Open one around
 * your own code to give it the same property, e.g. a Java grad sampler run outside a check.
 */
public final class OneBlasThreadScope implements AutoCloseable {
    private final NativeCore.OneBlasThreadHold hold;

    private OneBlasThreadScope(NativeCore.OneBlasThreadHold hold) {
        this.hold = hold;
    }

    /** Opens a scope; close it (try-with-resources) to end it. */
    public static OneBlasThreadScope open() {
        return new OneBlasThreadScope(Natives.call(NativeCore.OneBlasThreadHold::new));
    }

    /** OpenBLAS's process-wide thread count now (1 inside any open scope; 0 where OpenBLAS is not loaded). */
    public static int blasThreads() {
        return Natives.call(NativeCore::openblas_thread_count);
    }

    /** Ends this scope (once; later calls do nothing). */
    @Override
    public synchronized void close() {
        hold.close();
    }
}
