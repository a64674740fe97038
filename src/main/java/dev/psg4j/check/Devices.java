package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.Natives;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The devices a check can run on: "cpu", "cuda" (= "cuda:0") and "cuda:N". One parser,
 * the native core's: an unknown name, a LibTorch without CUDA, no visible device or an index out
 * of range is a BadInputException of one line that says what to do; when bytedeco's GPU natives are
 * on the class path but their CUDA libraries failed to load, that cause comes first.
 */
public final class Devices {
    /** The host. */
    public static final String CPU = "cpu";

    private Devices() {
    }

    /** The canonical name of {@code spec} ("cpu", "cuda:0", ...), or a BadInputException of one line. */
    public static String canonical(String spec) {
        BadInputException.requireNonNull(spec, "device", "\"cpu\", \"cuda\" or \"cuda:N\"");
        try {
            return Natives.call(() -> NativeCore.canonical_device(spec.trim()));
        } catch (BadInputException e) {
            Optional<String> loadFailure = Natives.cudaLoadFailure();
            if (loadFailure.isPresent() && spec.trim().toLowerCase(java.util.Locale.ROOT).startsWith("cuda")) {
                throw new BadInputException(loadFailure.get() + "; " + e.getMessage(), e);
            }
            throw e;
        }
    }

    /** The CUDA devices this process's LibTorch sees (0 on bytedeco's CPU natives or without a device). */
    public static int cudaDeviceCount() {
        return Natives.call(NativeCore::cuda_device_count);
    }

    /** Whether a CUDA device is visible, i.e. {@code device("cuda")} can run. */
    public static boolean cudaVisible() {
        return cudaDeviceCount() > 0;
    }

    /** The device {@code tensor} is on, as LibTorch names it ("cpu", "cuda:0", "meta"). */
    public static String of(Tensor tensor) {
        try (Device device = tensor.device(); BytePointer name = device.str()) {
            return name.getString();
        }
    }

    /** Waits until the work queued on {@code device} has finished (a no-op on the CPU): CUDA runs asynchronously. */
    public static void synchronize(String device) {
        Natives.call(() -> {
            NativeCore.synchronize_device(device);
            return null;
        });
    }

    /** The CUDA caching allocator's bytes in use on a device, now and at the peak since the last reset. */
    public record Memory(long allocatedBytes, long peakAllocatedBytes) {
    }

    /** {@link Memory} of {@code device} (zeros on the CPU, whose memory is the process's). */
    public static Memory memory(String device) {
        try (NativeCore.DeviceMemoryView view = Natives.call(() -> NativeCore.device_memory(device))) {
            return new Memory(view.allocated_bytes(), view.peak_allocated_bytes());
        }
    }

    /** Starts a new peak for {@link #memory} (a no-op on the CPU). */
    public static void resetPeakMemory(String device) {
        Natives.call(() -> {
            NativeCore.reset_peak_device_memory(device);
            return null;
        });
    }

    /**
     * {@code tensors}, each moved (copied) onto {@code device} where it is elsewhere, as new handles
     * the caller owns; the given ones are closed (the caller hands them over).
     */
    public static Map<String, Tensor> moveAll(Map<String, Tensor> tensors, String device) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        try (Device target = new Device(device)) {
            for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
                Tensor t = e.getValue();
                out.put(e.getKey(), of(t).equals(device) ? t : moved(t, target));
            }
        }
        return out;
    }

    private static Tensor moved(Tensor tensor, Device target) {
        try (tensor) {
            return tensor.to(target, tensor.scalar_type());
        }
    }

    /** Bad input unless {@code tensor} is on the check's {@code device}, naming it as {@code what}. */
    static void requireOn(Tensor tensor, String device, String what) {
        Natives.call(() -> {
            NativeCore.require_on_device(tensor, device, what);
            return null;
        });
    }
}
