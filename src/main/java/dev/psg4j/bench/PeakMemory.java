package dev.psg4j.bench;

import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.Natives;
import dev.psg4j.internal.SystemMemory;

import org.bytedeco.javacpp.Pointer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The peak extra memory of one call: the process's resident set at its highest during the call
 * minus the resident set just before it, after the native allocator returned its free pages to the
 * system (so what malloc kept cached from earlier calls is not counted as free). On Linux the
 * kernel's high-water mark is reset before the call ({@code /proc/self/clear_refs}) and read after
 * it ({@code VmHWM}), which sees every peak however short; elsewhere a thread samples the resident
 * set every millisecond. It counts native memory (tensors, LibTorch's buffers) and any heap the JVM
 * had to commit, i.e. what the call costs a machine on top of what the process already held.
 */
final class PeakMemory {
    private static final Path CLEAR_REFS = Path.of("/proc/self/clear_refs");
    private static final Path STATUS = Path.of("/proc/self/status");
    /** Writing this to clear_refs resets the high-water mark to the current resident set (Linux 4.0+). */
    private static final String RESET_PEAK = "5";

    private PeakMemory() {
    }

    /** glibc's malloc_trim: the allocator's free pages back to the system (a no-op elsewhere). */
    static void releaseFreeNativeMemory() {
        Natives.call(() -> {
            NativeCore.release_free_native_memory();
            return null;
        });
    }

    /**
     * Runs {@code call} {@value #MEASURED_CALLS} times; returns the largest peak resident bytes above
     * the resident set before the call (0 at least): one call now and then reads low (a first
     * measurement in a process has been seen at 3 % of what the next one reads), never high. For the call, allocations of {@value #FRESH_MAPPING_BYTES} bytes or more get mappings of
     * their own, so buffers freed earlier (by the warm-up call, in thread arenas malloc_trim does not
     * empty) are not silently reused; afterwards glibc's default threshold (128 KiB) is set again, fixed
     * (glibc no longer adapts it in this JVM: in-process timings, {@code --forks 0}, may differ a little).
     */
    static long peakExtraBytes(Runnable call) {
        setMmapThreshold(FRESH_MAPPING_BYTES);
        try {
            long peak = 0;
            for (int k = 0; k < MEASURED_CALLS; k++) {
                peak = Math.max(peak, measured(call));
            }
            return peak;
        } finally {
            setMmapThreshold(GLIBC_DEFAULT_MMAP_THRESHOLD);
        }
    }

    /**
     * On a CUDA device: runs {@code call} {@value #MEASURED_CALLS} times and returns the largest
     * peak of the CUDA caching allocator's bytes in use during a call above those in use before it
     * (the device's memory is what a GPU run runs out of; the process's resident set does not see it).
     * Synchronized before and after, so the peak covers the call's queued kernels.
     */
    static long peakDeviceBytes(String device, Runnable call) {
        long peak = 0;
        for (int k = 0; k < MEASURED_CALLS; k++) {
            dev.psg4j.check.Devices.synchronize(device);
            dev.psg4j.check.Devices.resetPeakMemory(device);
            long before = dev.psg4j.check.Devices.memory(device).allocatedBytes();
            call.run();
            dev.psg4j.check.Devices.synchronize(device);
            peak = Math.max(peak, dev.psg4j.check.Devices.memory(device).peakAllocatedBytes() - before);
        }
        return Math.max(0, peak);
    }

    /** How many calls are measured, the largest reported. */
    static final int MEASURED_CALLS = 2;

    /** Allocations at least this large get their own mapping while a call is measured. */
    static final long FRESH_MAPPING_BYTES = 64 * 1024;
    private static final long GLIBC_DEFAULT_MMAP_THRESHOLD = 128 * 1024;

    private static void setMmapThreshold(long bytes) {
        Natives.call(() -> {
            NativeCore.set_malloc_mmap_threshold(bytes);
            return null;
        });
    }

    private static long measured(Runnable call) {
        releaseFreeNativeMemory();
        if (resetPeak()) {
            long before = statusBytes("VmRSS:");
            call.run();
            long peak = statusBytes("VmHWM:");
            if (before >= 0 && peak >= 0) {
                return Math.max(0, peak - before);
            }
        }
        return sampled(call);
    }

    private static long sampled(Runnable call) {
        long before = Pointer.physicalBytes();
        AtomicLong peak = new AtomicLong(before);
        AtomicBoolean done = new AtomicBoolean();
        Thread sampler = new Thread(() -> {
            while (!done.get()) {
                peak.accumulateAndGet(Pointer.physicalBytes(), Math::max);
                try {
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "psg4j-bench-memory");
        sampler.setDaemon(true);
        sampler.start();
        try {
            call.run();
        } finally {
            done.set(true);
            try {
                sampler.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        peak.accumulateAndGet(Pointer.physicalBytes(), Math::max);
        return Math.max(0, peak.get() - before);
    }

    private static boolean resetPeak() {
        try {
            Files.writeString(CLEAR_REFS, RESET_PEAK, StandardCharsets.US_ASCII);
            return true;
        } catch (IOException | UnsupportedOperationException | SecurityException e) {
            return false;
        }
    }

    /** A "Name:   1234 kB" line of /proc/self/status in bytes; -1 when there is none. */
    private static long statusBytes(String field) {
        try {
            for (String line : Files.readAllLines(STATUS, StandardCharsets.US_ASCII)) {
                if (line.startsWith(field)) {
                    return SystemMemory.kilobyteField(line.substring(field.length()));
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }
}
