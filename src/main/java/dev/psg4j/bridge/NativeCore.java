package dev.psg4j.bridge;

import dev.psg4j.check.ClippingMode;
import dev.psg4j.check.SketchPrecision;
import dev.psg4j.check.ToleranceRule;
import dev.psg4j.report.ParamStatus;
import dev.psg4j.report.SketchZone;
import dev.psg4j.engine.TensorContainer;

import org.bytedeco.javacpp.FunctionPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.annotation.Allocator;
import org.bytedeco.javacpp.annotation.ByRef;
import org.bytedeco.javacpp.annotation.ByVal;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Const;
import org.bytedeco.javacpp.annotation.Name;
import org.bytedeco.javacpp.annotation.Namespace;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.StdString;

/**
 * The JavaCPP peer of {@code src/main/cpp/bridge/psg4j_bridge.h}: JavaCPP generates and compiles
 * the JNI from these annotations at build time. bytedeco objects cross as raw pointers cast to
 * their C++ types ({@code at::Tensor*}, {@code torch::jit::Module*}, ...), so nothing is copied and
 * the torch presets' own headers are not needed. Callers use {@link Natives}, which types the
 * errors; nothing outside this package touches this class directly.
 */
@Platform(compiler = "cpp17", include = "bridge/psg4j_bridge.h", link = "psg4j")
@Namespace("psg4j::bridge")
public final class NativeCore {
    static {
        // libtorch_cpu and libc10 (with GPU natives: CUDA, then libtorch_cuda and libc10_cuda) must be
        // in the process first: libpsg4j resolves them by soname.
        Natives.loadTorch();
        try {
            Loader.load();
        } catch (UnsatisfiedLinkError e) {
            throw Natives.nativeCoreLoadFailure(e);
        }
    }

    private NativeCore() {
    }

    /** Forces the native libraries to load (a no-op after the first call). */
    public static void load() {
    }

    @Name("NativeModel")
    public static class NativeModel extends Pointer {
        static {
            Loader.load();
        }

        public NativeModel() {
            allocate();
        }

        private native void allocate();

        public native @StdString String describe();
    }

    @Name("NativeLoss")
    public static class NativeLoss extends Pointer {
        static {
            Loader.load();
        }

        public NativeLoss() {
            allocate();
        }

        private native void allocate();
    }

    // ---- Devices ----

    /**
     * How the reference spreads its samples (psg4j::Spread), moved in one call: {@code workers}
     * sample workers on the CPU, each on one intra-op thread (0: the calling thread's intra-op
     * count; CUDA runs the samples on streams instead), and whether a CUDA reference replays a
     * captured one-sample CUDA graph.
     */
    @Name("ReferenceSpread")
    public static class ReferenceSpread extends Pointer {
        static {
            Loader.load();
        }

        public ReferenceSpread(int workers, boolean cudaGraphs) {
            allocate(workers, cudaGraphs);
        }

        private native void allocate(int workers, @Cast("bool") boolean cudaGraphs);

        public native int workers();

        public native @Cast("bool") boolean cuda_graphs();
    }

    /** The caching allocator's bytes on a CUDA device, now and at the peak since the last reset (zeros on the CPU). */
    @Name("DeviceMemoryView")
    public static class DeviceMemoryView extends Pointer {
        static {
            Loader.load();
        }

        public DeviceMemoryView() {
            allocate();
        }

        private native void allocate();

        public native @Cast("int64_t") long allocated_bytes();

        public native @Cast("int64_t") long peak_allocated_bytes();
    }

    /**
     * While open, CUDA float32 matmuls and convolutions run in IEEE float32, not TF32
     * (psg4j::ExactFloat32Scope); {@link #close()} ends it. Scopes nest and overlap across threads:
     * the last to close restores the process's settings.
     */
    @Name("ExactFloat32")
    public static class ExactFloat32 extends Pointer {
        static {
            Loader.load();
        }

        public ExactFloat32() {
            allocate();
        }

        private native void allocate();
    }

    /** "cpu" or "cuda:N" for a spec ("cpu", "cuda", "cuda:N", any case); bad input with one line otherwise. */
    public static native @StdString String canonical_device(@StdString String spec);

    public static native @Cast("bool") boolean cuda_runtime_loaded();

    public static native int cuda_device_count();

    public static native @Cast("bool") boolean cuda_compiled();

    /** Waits until the work queued on {@code device} has finished (a no-op on the CPU). */
    public static native void synchronize_device(@StdString String device);

    public static native @ByVal DeviceMemoryView device_memory(@StdString String device);

    public static native void reset_peak_device_memory(@StdString String device);

    /** Bad input unless {@code tensor} is on {@code device}: "WHAT is on X but the check runs on Y: ...". */
    public static native void require_on_device(@Cast("const at::Tensor*") Pointer tensor, @StdString String device,
            @StdString String what);

    public static native @Cast("bool") boolean tf32_allowed();

    /** Test hook: lets (or stops) CUDA float32 matmuls and convolutions use TF32, process-wide. */
    public static native void set_tf32_allowed_for_tests(@Cast("bool") boolean allowed);

    // ---- end of the devices block ----

    @Name("NativeBatch")
    public static class NativeBatch extends Pointer {
        static {
            Loader.load();
        }

        public NativeBatch() {
            allocate();
        }

        private native void allocate();

        public native @Cast("int64_t") long size();

        public native @Cast("int64_t") long input_count();

        public native void input(@Cast("int64_t") long k, @Cast("at::Tensor*") Pointer out);

        public native @Cast("int64_t") long target_count();

        public native void target(@Cast("int64_t") long k, @Cast("at::Tensor*") Pointer out);
    }

    @Name("NamedTensorList")
    public static class NamedTensorList extends Pointer {
        static {
            Loader.load();
        }

        public NamedTensorList() {
            allocate();
        }

        private native void allocate();

        public native @Cast("int64_t") long size();

        public native @StdString String name(@Cast("int64_t") long k);

        public native void tensor(@Cast("int64_t") long k, @Cast("at::Tensor*") Pointer out);
    }

    @Name("ParameterAliases")
    public static class ParameterAliases extends Pointer {
        static {
            Loader.load();
        }

        public ParameterAliases() {
            allocate();
        }

        private native void allocate();

        public native @Cast("int64_t") long size();

        public native @StdString String name(@Cast("int64_t") long k);

        public native @Cast("int64_t") long alias_count(@Cast("int64_t") long k);

        public native @StdString String alias(@Cast("int64_t") long k, @Cast("int64_t") long m);
    }

    /** The peer of {@code ProbeView}: everything one probe found, read by accessor. */
    @Name("ProbeView")
    public static class ProbeView extends Pointer {
        static {
            Loader.load();
        }

        public ProbeView() {
            allocate();
        }

        private native void allocate();

        public native @StdString String non_finite_where();

        public native @Cast("int64_t") long non_finite_count();

        public native @Cast("int64_t") long non_finite_sample(@Cast("int64_t") long k);

        public native @Cast("bool") boolean deterministic();

        public native double max_abs_diff();

        public native @Cast("bool") boolean has_independence();

        public native @Cast("bool") boolean independent();

        public native @StdString String method();

        public native @StdString String alone_route();

        public native @StdString String mixing_module();

        public native @Cast("bool") boolean dense();

        public native @Cast("bool") boolean leaks_complete();

        public native @Cast("int64_t") long leak_target_count();

        public native @Cast("int64_t") long leak_target(@Cast("int64_t") long k);

        public native @Cast("int64_t") long leak_source_count(@Cast("int64_t") long k);

        public native @Cast("int64_t") long leak_source(@Cast("int64_t") long k, @Cast("int64_t") long m);

        public native @Cast("int64_t") long affected_count();

        public native @Cast("int64_t") long affected(@Cast("int64_t") long k);

        public native @Cast("int64_t") long source_count();

        public native @Cast("int64_t") long source(@Cast("int64_t") long k);

        public native @Cast("int64_t") long differs_alone_count();

        public native @Cast("int64_t") long differs_alone(@Cast("int64_t") long k);

        public native @Cast("int64_t") long batched_forwards();

        public native @Cast("int64_t") long vjps();

        public native @Cast("int64_t") long vmapped_forwards();

        public native @Cast("int64_t") long sample_forwards();

        public native double probe_ms();
    }

    @Name("ComparisonView")
    public static class ComparisonView extends Pointer {
        static {
            Loader.load();
        }

        public ComparisonView() {
            allocate();
        }

        private native void allocate();

        public native @Cast("int64_t") long batch_size();

        /** How the reference ran: "cpu workers", "cuda streams", "cuda graphs", ...; "" where none ran. */
        public native @StdString String reference_route();

        public native @Cast("int64_t") long param_count();

        public native @StdString String name(@Cast("int64_t") long p);

        public native @Cast("int64_t") long alias_count(@Cast("int64_t") long p);

        public native @StdString String alias(@Cast("int64_t") long p, @Cast("int64_t") long k);

        public native ParamStatus status(@Cast("int64_t") long p);

        public native @Cast("int64_t") long expected_rank(@Cast("int64_t") long p);

        public native @Cast("int64_t") long expected_dim(@Cast("int64_t") long p, @Cast("int64_t") long d);

        public native @Cast("int64_t") long candidate_rank(@Cast("int64_t") long p);

        public native @Cast("int64_t") long candidate_dim(@Cast("int64_t") long p, @Cast("int64_t") long d);

        public native double stat(@Cast("int64_t") long p, @Cast("int64_t") long sample, int field);

        /** Every stat in one call: {@code out} = [param_count, batch_size, stat_fields()] doubles, stat's field order. */
        public native void stats(@Cast("at::Tensor*") Pointer out);

        /** How many numbers {@link #stats} gives per parameter and sample. */
        public static native int stat_fields();

        /** The precision the reference ran in: "float", "double", "half", "bfloat16". */
        public native @StdString String reference_precision();

        /** How the rounding level was measured: "double", "perturbed parameters", or "" where it was not. */
        public native @StdString String rounding_yardstick();

        /** Whether parameter p's per-sample rounding levels were measured (stat field 6). */
        public native @Cast("bool") boolean rounding_measured(@Cast("int64_t") long p);

        public native @Cast("int64_t") long rounding_sample_count();

        public native @Cast("int64_t") long rounding_sample(@Cast("int64_t") long k);

        /** c: the rounding rule widens an element's tolerance by c times its sample's rounding level. */
        public static native double rounding_multiple();

        public native @Cast("bool") boolean sketched(@Cast("int64_t") long p);

        public native SketchZone sketch_zone(@Cast("int64_t") long p);

        public native double sketch_residual_ratio(@Cast("int64_t") long p);

        // ---- Value diagnoses ----
        /** Whether parameter p has fingerprints (wherever it has per-sample statistics). */
        public native @Cast("bool") boolean has_fingerprints(@Cast("int64_t") long p);

        public native @ByVal FingerprintView fingerprints(@Cast("int64_t") long p);
        // ---- end of the value-diagnoses block ----
    }

    // ---- Value diagnoses ----
    /**
     * One compared parameter's per-sample fingerprints (fingerprints.h), moved out in one call. Each
     * tensor accessor fills {@code out} with a new double tensor on the host that the caller owns:
     * [B, projections()] for projections, [B] for norms.
     */
    @Name("FingerprintView")
    public static class FingerprintView extends Pointer {
        static {
            Loader.load();
        }

        public FingerprintView() {
            allocate();
        }

        private native void allocate();

        public native @Cast("int64_t") long projections();

        public native @Cast("int64_t") long elements();

        public native @Cast("int64_t") long projected();

        public native @Cast("bool") boolean has_transposed();

        public native void candidate(@Cast("at::Tensor*") Pointer out);

        public native void reference(@Cast("at::Tensor*") Pointer out);

        public native void reference_transposed(@Cast("at::Tensor*") Pointer out);

        public native void candidate_norms(@Cast("at::Tensor*") Pointer out);

        public native void reference_norms(@Cast("at::Tensor*") Pointer out);

        public native void candidate_projected_norms(@Cast("at::Tensor*") Pointer out);
    }
    // ---- end of the value-diagnoses block ----

    @Name("SketchView")
    public static class SketchView extends Pointer {
        static {
            Loader.load();
        }

        public SketchView() {
            allocate();
        }

        private native void allocate();

        public native @Cast("int64_t") long comparison_count();

        public native @ByVal ComparisonView comparison(@Cast("int64_t") long k);

        public native @Cast("int64_t") long forwards();

        public native @Cast("int64_t") long backwards();

        public native @Cast("int64_t") long exact_params();

        public native double pass_fraction();

        public native double noise_multiplier();

        public native @Cast("bool") boolean in_double();

        public native @Cast("bool") boolean float_first();

        public native @Cast("int64_t") long double_params();
    }

    // ---- Exact checks of several reductions at once ----

    /** The candidates of the reductions one {@link #compare_reductions} call checks. */
    @Name("ReductionCandidates")
    public static class ReductionCandidates extends Pointer {
        static {
            Loader.load();
        }

        public ReductionCandidates() {
            allocate();
        }

        private native void allocate();

        public native void add(int reduction, @Const @ByRef NamedTensorList candidate);
    }

    /** One comparison per candidate of a {@link #compare_reductions} call, in order. */
    @Name("ComparisonList")
    public static class ComparisonList extends Pointer {
        static {
            Loader.load();
        }

        public ComparisonList() {
            allocate();
        }

        private native void allocate();

        public native @Cast("int64_t") long size();

        public native @ByVal ComparisonView get(@Cast("int64_t") long k);
    }

    /** One comparison per candidate from one reference pass where that is exact, spread as {@code spread} says. */
    public static native @ByVal ComparisonList compare_reductions(@Const @ByRef NativeModel model,
            @Const @ByRef NativeBatch batch, @Const @ByRef NativeLoss loss,
            @Const @ByRef ReductionCandidates candidates, double atol, double rtol, ToleranceRule rule,
            @Const @ByRef ReferenceSpread spread);

    /** Sets the calling thread's intra-op count (its OpenMP count; 0 leaves it); returns the previous one. */
    public static native int set_intra_op_threads_of_this_thread(int threads);

    /**
     * While open, OpenBLAS runs on one thread, process-wide (psg4j::OneBlasThread); {@link #close()}
     * ends it. Holds nest and overlap across threads: the last to close restores the count.
     */
    @Name("OneBlasThreadHold")
    public static class OneBlasThreadHold extends Pointer {
        static {
            Loader.load();
        }

        public OneBlasThreadHold() {
            allocate();
        }

        private native void allocate();
    }

    /** OpenBLAS's process-wide thread count now (0 where no OpenBLAS is loaded). */
    public static native int openblas_thread_count();

    /** Test hook: sets OpenBLAS's process-wide thread count (as openblas_set_num_threads would). */
    public static native void set_openblas_threads_for_tests(int threads);

    // ---- end of the block ----

    // ---- Norms-only and clipped-sum candidates ----

    /** The reference's per-sample norms of one reduction (peer of {@code SampleNormsView}). */
    @Name("SampleNormsView")
    public static class SampleNormsView extends Pointer {
        static {
            Loader.load();
        }

        public SampleNormsView() {
            allocate();
        }

        private native void allocate();

        public native @Cast("int64_t") long batch_size();

        public native @Cast("int64_t") long param_count();

        public native @StdString String name(@Cast("int64_t") long p);

        public native @Cast("int64_t") long alias_count(@Cast("int64_t") long p);

        public native @StdString String alias(@Cast("int64_t") long p, @Cast("int64_t") long k);

        /** {@code out} = [P, B] doubles ‖g_{i,p}‖ (the view's tensor: read it only). */
        public native void per_parameter(@Cast("at::Tensor*") Pointer out);

        /** {@code out} = [B] doubles ‖g_i‖ (the view's tensor: read it only). */
        public native void whole(@Cast("at::Tensor*") Pointer out);
    }

    /** How a clipped sum was clipped: the mode and its thresholds. */
    @Name("ClippingSpec")
    public static class ClippingSpec extends Pointer {
        static {
            Loader.load();
        }

        public ClippingSpec() {
            allocate();
        }

        private native void allocate();

        public native void set_mode(ClippingMode mode);

        public native void add_threshold(double threshold);
    }

    /** A clipped-sum comparison (peer of {@code ClippedSumView}). */
    @Name("ClippedSumView")
    public static class ClippedSumView extends Pointer {
        static {
            Loader.load();
        }

        public ClippedSumView() {
            allocate();
        }

        private native void allocate();

        public native @Cast("int64_t") long batch_size();

        public native @Cast("int64_t") long param_count();

        public native @StdString String name(@Cast("int64_t") long p);

        public native @Cast("int64_t") long alias_count(@Cast("int64_t") long p);

        public native @StdString String alias(@Cast("int64_t") long p, @Cast("int64_t") long k);

        public native @Cast("int64_t") long rank(@Cast("int64_t") long p);

        public native @Cast("int64_t") long dim(@Cast("int64_t") long p, @Cast("int64_t") long d);

        public native double threshold(@Cast("int64_t") long p);

        /** {@code out} = [P, 9] doubles: max_abs, max_rel, max_tol_ratio, bad, cand/ref non-finite, worst element, its candidate and reference. */
        public native void stats(@Cast("at::Tensor*") Pointer out);

        public native void norms(@Cast("at::Tensor*") Pointer out);

        public native void whole(@Cast("at::Tensor*") Pointer out);

        public native void factors(@Cast("at::Tensor*") Pointer out);

        public native @Cast("int64_t") long match_count();

        public native @StdString String match_kind(@Cast("int64_t") long k);

        public native @StdString String match_explanation(@Cast("int64_t") long k);

        public native @Cast("int64_t") long match_param_count(@Cast("int64_t") long k);

        public native @Cast("int64_t") long match_param(@Cast("int64_t") long k, @Cast("int64_t") long m);

        public native @Cast("int64_t") long match_sample_count(@Cast("int64_t") long k);

        public native @Cast("int64_t") long match_sample(@Cast("int64_t") long k, @Cast("int64_t") long m);
    }

    /** The reference's per-sample norms, spread as {@link #compare_reductions}'s. */
    public static native @ByVal SampleNormsView reference_norms(@Const @ByRef NativeModel model,
            @Const @ByRef NativeBatch batch, @Const @ByRef NativeLoss loss, int reduction,
            @Const @ByRef ReferenceSpread spread);

    /** The candidate clipped sum {name: Tensor[*shape]} against the reference's. */
    public static native @ByVal ClippedSumView compare_clipped_sum(@Const @ByRef NativeModel model,
            @Const @ByRef NativeBatch batch, @Const @ByRef NativeLoss loss, int reduction,
            @Const @ByRef NamedTensorList candidate, @Const @ByRef ClippingSpec clipping, double atol, double rtol,
            @Const @ByRef ReferenceSpread spread);

    // ---- end of the norms block ----

    /**
     * Sets the calling thread's call scope and returns the one it replaces ({@link Natives#call}
     * sets its own around each call and puts the other back); see Note [Call scopes] in
     * psg4j/call_scope.h.
     */
    public static native @Cast("int64_t") long swap_call_scope(@Cast("int64_t") long scope);

    /**
     * A Java forward: fills {@code output} and returns 0, or returns non-zero after a throw, which
     * it records under {@code callScope} ({@link Natives#recordCallbackFailure}).
     */
    @Allocator(max = 256)
    public static class ForwardCallback extends FunctionPointer {
        static {
            Loader.load();
        }

        protected ForwardCallback() {
            allocate();
        }

        private native void allocate();

        public native int call(@Cast("int64_t") long callScope, @Cast("const std::vector<at::Tensor>*") Pointer inputs,
                @Cast("const std::vector<at::Tensor>*") Pointer parameters, @Cast("at::Tensor*") Pointer output);
    }

    /** A Java loss: fills {@code loss} with a scalar and returns 0, or non-zero after a throw (recorded as a forward's). */
    @Allocator(max = 256)
    public static class LossCallback extends FunctionPointer {
        static {
            Loader.load();
        }

        protected LossCallback() {
            allocate();
        }

        private native void allocate();

        public native int call(@Cast("int64_t") long callScope, @Cast("const at::Tensor*") Pointer output,
                @Cast("const std::vector<at::Tensor>*") Pointer targets, int reduction,
                @Cast("at::Tensor*") Pointer loss);
    }

    public static native @ByVal NativeModel torchscript_model(@Cast("torch::jit::Module*") Pointer module);

    public static native @ByVal NativeModel frontend_model(@Cast("torch::nn::Module*") Pointer module);

    public static native @ByVal NativeModel function_model(
            @Cast("const std::vector<std::string>*") Pointer names,
            @Cast("const std::vector<at::Tensor>*") Pointer parameters, ForwardCallback forward,
            @StdString String description);

    public static native @ByVal NativeLoss builtin_loss(int kind);

    public static native @ByVal NativeLoss custom_loss(LossCallback loss);

    public static native void loss_value(@Const @ByRef NativeLoss loss, @Cast("const at::Tensor*") Pointer output,
            @Cast("const std::vector<at::Tensor>*") Pointer targets, int reduction,
            @Cast("int64_t") long batchSize, @Cast("at::Tensor*") Pointer out);

    /** {@code device}: "" keeps the tensors where they are; a device spec moves (copies) them onto it. */
    public static native @ByVal NativeBatch make_batch(
            @Cast("const std::vector<at::Tensor>*") Pointer inputs,
            @Cast("const std::vector<at::Tensor>*") Pointer targets,
            @Cast("int64_t") long batchDim, @Cast("int64_t") long targetBatchDim, @StdString String device);

    public static native @ByVal NamedTensorList named_tensor_list(
            @Cast("const std::vector<std::string>*") Pointer names,
            @Cast("const std::vector<at::Tensor>*") Pointer tensors);

    public static native @ByVal NamedTensorList trainable_parameters(@Const @ByRef NativeModel model);

    public static native @ByVal ParameterAliases parameter_aliases(@Const @ByRef NativeModel model);

    /** glibc's malloc_trim(0): returns the allocator's free pages to the system. */
    public static native void release_free_native_memory();

    // ---- bench memory measurement
    /** glibc's mallopt(M_MMAP_THRESHOLD, bytes) (at most 32 MiB): allocations of that size or more get their own mapping. */
    public static native void set_malloc_mmap_threshold(long bytes);
    // ---- end of the bench memory block.

    public static native @ByVal NamedTensorList microbatch_gradients(@Const @ByRef NativeModel model,
            @Const @ByRef NativeBatch batch, @Const @ByRef NativeLoss loss, int reduction,
            @Const @ByRef ReferenceSpread spread);

    /** randomness: 0 error, 1 different, 2 same; chunkSize 0: the whole batch in one pass. */
    public static native @ByVal NamedTensorList vmap_gradients(@Const @ByRef NativeModel model,
            @Const @ByRef NativeBatch batch, @Const @ByRef NativeLoss loss, int reduction, long chunkSize,
            int randomness);

    // ---- The vmap engine into caller-owned buffers.
    /** vmap_gradients written into {@code out}'s tensors, which stay the caller's. */
    public static native void vmap_gradients_into(@Const @ByRef NativeModel model, @Const @ByRef NativeBatch batch,
            @Const @ByRef NativeLoss loss, int reduction, long chunkSize, int randomness,
            @Const @ByRef NamedTensorList out);
    // ---- end of the vmap-into block.

    public static native @ByVal ProbeView probe(@Const @ByRef NativeModel model, @Const @ByRef NativeBatch batch,
            @Cast("int64_t") long probeSamples, double tolerance);

    public static native double probe_determinism(@Const @ByRef NativeModel model, @Const @ByRef NativeBatch batch);

    /** Fills {@code entries} with the file's tensors; returns what held them (call intern() on it). */
    public static native TensorContainer load_tensor_file(@StdString String path, NamedTensorList entries);

    /** Either candidate may be null (that reduction is not checked); at least one is given. */
    public static native @ByVal SketchView sketch_compare(@Const @ByRef NativeModel model,
            @Const @ByRef NativeBatch batch, @Const @ByRef NativeLoss loss, @Const NamedTensorList sumCandidate,
            @Const NamedTensorList meanCandidate, double atol, double rtol, ToleranceRule rule,
            @Cast("int64_t") long projections, SketchPrecision precision, @Cast("uint64_t") long seed);

    public static native @ByVal ComparisonView compare_with_reference(@Const @ByRef NativeModel model,
            @Const @ByRef NativeBatch batch, @Const @ByRef NativeLoss loss, int reduction,
            @Const @ByRef NamedTensorList candidate, double atol, double rtol, ToleranceRule rule);
    // ---- Layer capture for hooks-style samplers ----

    /** capture_layers' result: per captured layer use, its kind, options, parameter names and tensors. */
    @Name("LayerCaptureView")
    public static class LayerCaptureView extends Pointer {
        static {
            Loader.load();
        }

        public LayerCaptureView() {
            allocate();
        }

        private native void allocate();

        public native @Cast("int64_t") long size();

        public native @StdString String kind(@Cast("int64_t") long k);

        public native @StdString String name(@Cast("int64_t") long k);

        public native @Cast("bool") boolean training(@Cast("int64_t") long k);

        public native @Cast("int64_t") long parameter_count(@Cast("int64_t") long k);

        public native @StdString String parameter_local_name(@Cast("int64_t") long k, @Cast("int64_t") long m);

        public native @StdString String parameter_trainable_name(@Cast("int64_t") long k, @Cast("int64_t") long m);

        public native void activations(@Cast("int64_t") long k, @Cast("at::Tensor*") Pointer out);

        public native void backprops(@Cast("int64_t") long k, @Cast("at::Tensor*") Pointer out);

        public native @Cast("int64_t") long spatial_rank(@Cast("int64_t") long k);

        public native @Cast("int64_t") long stride(@Cast("int64_t") long k, @Cast("int64_t") long d);

        public native @Cast("int64_t") long padding(@Cast("int64_t") long k, @Cast("int64_t") long d);

        public native @Cast("int64_t") long dilation(@Cast("int64_t") long k, @Cast("int64_t") long d);

        public native @Cast("int64_t") long groups(@Cast("int64_t") long k);

        public native @Cast("bool") boolean exact_padding(@Cast("int64_t") long k);

        public native @Cast("bool") boolean has_padding_idx(@Cast("int64_t") long k);

        public native @Cast("int64_t") long padding_idx(@Cast("int64_t") long k);

        public native @Cast("int64_t") long normalized_rank(@Cast("int64_t") long k);

        public native @Cast("int64_t") long normalized_dim(@Cast("int64_t") long k, @Cast("int64_t") long d);

        public native double eps(@Cast("int64_t") long k);
    }

    /** One batched forward and backward of the batch loss, each parameterized layer's activations and backprops. */
    public static native @ByVal LayerCaptureView capture_layers(@Const @ByRef NativeModel model,
            @Const @ByRef NativeBatch batch, @Const @ByRef NativeLoss loss, int reduction);

    // ---- end of the layer capture block.

    // ---- C++-frontend layer registry ----

    /**
     * The Java forward of every user-registered C++-frontend layer type ({@code typeId} says whose):
     * fills {@code output} and returns 0, or returns non-zero after a throw (recorded as a forward's).
     */
    @Allocator(max = 1)
    public static class LayerForwardCallback extends FunctionPointer {
        static {
            Loader.load();
        }

        protected LayerForwardCallback() {
            allocate();
        }

        private native void allocate();

        public native int call(@Cast("int64_t") long callScope, @Cast("int64_t") long typeId,
                @Cast("const at::Tensor*") Pointer input,
                @Cast("const std::vector<at::Tensor>*") Pointer parameters, @Cast("at::Tensor*") Pointer output);
    }

    public static native void register_frontend_layer(@StdString String name,
            @Cast("const std::vector<std::string>*") Pointer slots, @Cast("int64_t") long typeId,
            LayerForwardCallback forward);

    public static native void frontend_layer_type_names(@Cast("std::vector<std::string>*") Pointer out);

    public static native void make_frontend_layer(@StdString String type,
            @Cast("const std::vector<std::string>*") Pointer names,
            @Cast("const std::vector<at::Tensor>*") Pointer tensors, @Cast("torch::nn::AnyModule*") Pointer out);

    public static native void frontend_layer_of(@Cast("torch::nn::Module*") Pointer module,
            @Cast("torch::nn::AnyModule*") Pointer out);

    // ---- end of the layer registry block ----
}
