package dev.psg4j.check;

import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.Natives;

/**
 * While open, float32 matmuls and convolutions on CUDA run in IEEE float32, not TF32. Why: TF32
 * rounds the inputs of a float32 product to 10 mantissa bits (relative error ~5e-4), so a batched
 * candidate and the one-sample reference would differ far beyond the default rtol of 1e-4 with no
 * bug in either. The switch is process-wide (LibTorch has no per-thread one): the first open scope
 * saves the process's settings and the last one to close restores them, so scopes may nest and
 * overlap on several threads; meanwhile other threads' CUDA matmuls are exact too. It acts on
 * any build (the flags are LibTorch's process-wide settings), harmlessly on the CPU.
 * {@link PerSampleCheck} holds one for each whole run, its sampler included.
 */
public final class ExactFloat32Scope implements AutoCloseable {
    private final NativeCore.ExactFloat32 scope;

    private ExactFloat32Scope(NativeCore.ExactFloat32 scope) {
        this.scope = scope;
    }

    /** Opens a scope; close it (try-with-resources) to end it. */
    public static ExactFloat32Scope open() {
        return new ExactFloat32Scope(Natives.call(NativeCore.ExactFloat32::new));
    }

    /** Whether CUDA float32 matmuls or convolutions may use TF32 now (false inside any open scope). */
    public static boolean tf32Allowed() {
        return Natives.call(NativeCore::tf32_allowed);
    }

    /** Ends this scope (once; later calls do nothing). */
    @Override
    public synchronized void close() {
        scope.close();
    }
}
