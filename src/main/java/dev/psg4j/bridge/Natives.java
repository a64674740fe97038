package dev.psg4j.bridge;

import dev.psg4j.BadInputException;
import dev.psg4j.ModelExecutionException;
import dev.psg4j.Psg4jException;
import dev.psg4j.UnsupportedModelException;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.pytorch.StringVector;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Calls into {@link NativeCore} and turns its errors into psg4j's typed exceptions. The native
 * side prefixes every message with {@code psg4j:<kind>:}; a Java callback's own exception is
 * rethrown as it was.
 */
public final class Natives {
    private static final String PREFIX = "psg4j:";
    /** The call scope of a thread that no call set (psg4j/call_scope.h's kNoCallScope). */
    private static final long NO_CALL_SCOPE = 0;

    private Natives() {
    }

    /**
     * Why CUDA is unusable in this process although bytedeco's GPU natives are on the class path
     * (their CUDA libraries failed to load: the cause, and what to add), or empty: CPU natives, or
     * the GPU natives loaded; the device parser puts it first in its message.
     */
    public static Optional<String> cudaLoadFailure() {
        NativeCore.load();
        return Optional.ofNullable(cudaLoadFailure);
    }

    // ---- Library loading (NativeCore's static initializer) -------------------------------------

    /** The CUDA libraries of bytedeco's GPU LibTorch, dependencies before their users. */
    private static final List<String> CUDA_LIBRARIES = List.of(
            "libcudart.so.13", "libcupti.so.13", "libnvJitLink.so.13", "libcublasLt.so.13", "libcublas.so.13",
            "libcusparse.so.12", "libcusolver.so.12", "libcusolverMg.so.12", "libcufft.so.12", "libcurand.so.10",
            "libcufile.so.0", "libnccl.so.2", "libcudnn_graph.so.9", "libcudnn_engines_precompiled.so.9",
            "libcudnn_engines_runtime_compiled.so.9", "libcudnn_heuristic.so.9", "libcudnn_ops.so.9",
            "libcudnn_cnn.so.9", "libcudnn_adv.so.9", "libcudnn.so.9");
    /** Names the folder of those libraries; else the -Pgpu build's resource below tells it. */
    static final String CUDA_LIB_DIR_PROPERTY = "psg4j.cuda.lib.dir";
    private static final String CUDA_RUNTIME_RESOURCE = "cuda-runtime.properties";
    private static final String CUDA_HELP = "build with -Pgpu (it fetches CUDA 13.1's libraries) or -Pgpu,cuda-redist, "
            + "or install CUDA 13.1 and put its lib64 folder on LD_LIBRARY_PATH (or pass -D" + CUDA_LIB_DIR_PROPERTY
            + "=<folder>)";
    private static final Pattern MISSING_LIBRARY = Pattern.compile("(lib[\\w.+-]+\\.so[.\\d]*): cannot open shared object file");
    /** The NVIDIA driver's library, which machines without a GPU lack. */
    private static final String DRIVER_LIBRARY = "libcuda.so.1";
    private static volatile String cudaLoadFailure;

    /**
     * Loads bytedeco's LibTorch for {@link NativeCore}. With its GPU natives (classifier
     * {@code linux-x86_64-gpu}) CUDA 13.1 goes first (even their libtorch_cpu needs libcudart), then
     * torch, then torch_cuda: libtorch_cuda and libc10_cuda register CUDA's device guard, allocator
     * and kernels, so they must be in the process before any CUDA tensor exists. A torch_cuda that
     * cannot load is recorded ({@link #cudaLoadFailure}) and the process goes on with the CPU.
     */
    static void loadTorch() {
        if (!gpuNatives()) {
            Loader.load(org.bytedeco.pytorch.global.torch.class);
            return;
        }
        preloadCudaLibraries();
        try {
            Loader.load(org.bytedeco.pytorch.global.torch.class);
        } catch (UnsatisfiedLinkError e) {
            throw new UnsatisfiedLinkError("psg4j: bytedeco's GPU LibTorch (pytorch " + Loader.getPlatform()
                    + "-gpu) cannot load without CUDA 13.1: " + missingLibrary(e) + "; " + CUDA_HELP);
        }
        try {
            Loader.load(org.bytedeco.pytorch.global.torch_cuda.class);
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            String missing = missingLibrary(e);
            // Without the NVIDIA driver (libcuda.so.1: a machine without a GPU) only bytedeco's Java
            // CUDA API (jnicudart) fails; libtorch_cuda and libc10_cuda are loaded (the torch preset
            // preloads them), and CUDA just has no device, which the device queries say.
            if (!missing.startsWith(DRIVER_LIBRARY + " ")) {
                cudaLoadFailure = "CUDA is unusable: bytedeco's GPU LibTorch is on the class path but its CUDA "
                        + "part could not load (" + missing + "): " + CUDA_HELP;
            }
        }
    }

    /** What {@link NativeCore} throws when libpsg4j itself cannot load: one line, naming what is missing. */
    static UnsatisfiedLinkError nativeCoreLoadFailure(UnsatisfiedLinkError e) {
        String message = gpuNatives()
                ? "psg4j: its native core was built with CUDA (-Pgpu) and cannot load (" + missingLibrary(e) + "): "
                        + CUDA_HELP
                : "psg4j: its native core (libpsg4j, libjnipsg4j) cannot load (" + missingLibrary(e)
                        + "): rebuild with 'mvn -DskipTests package'";
        UnsatisfiedLinkError failure = new UnsatisfiedLinkError(message);
        failure.initCause(e);
        return failure;
    }

    /** Whether the class path holds bytedeco's GPU natives of torch (rather than the CPU ones). */
    private static boolean gpuNatives() {
        String folder = "org/bytedeco/pytorch/" + Loader.getPlatform() + "-gpu/";
        return Natives.class.getClassLoader().getResource(folder + "libtorch_cuda.so") != null;
    }

    /**
     * Loads the CUDA libraries of the -Pgpu build's folder (or {@value #CUDA_LIB_DIR_PROPERTY})
     * by absolute path, so that LibTorch's own references to them (by soname) resolve to these
     * without LD_LIBRARY_PATH. Nothing to do without such a folder: CUDA is then the system's.
     */
    private static void preloadCudaLibraries() {
        Path folder = cudaLibraryFolder();
        if (folder == null) {
            return;
        }
        List<Path> pending = new ArrayList<>();
        for (String name : CUDA_LIBRARIES) {
            Path library = folder.resolve(name);
            if (Files.isRegularFile(library)) {
                pending.add(library);
            }
        }
        // The list is in dependency order; a pass that loads nothing more ends it (what is left
        // fails again later, named, when torch_cuda loads).
        boolean progress = true;
        while (progress && !pending.isEmpty()) {
            progress = pending.removeIf(library -> {
                try {
                    System.load(library.toString());
                    return true;
                } catch (UnsatisfiedLinkError e) {
                    return false;
                }
            });
        }
    }

    private static Path cudaLibraryFolder() {
        String folder = System.getProperty(CUDA_LIB_DIR_PROPERTY);
        if (folder == null) {
            try (InputStream in = Natives.class.getResourceAsStream(CUDA_RUNTIME_RESOURCE)) {
                if (in != null) {
                    Properties properties = new Properties();
                    properties.load(in);
                    folder = properties.getProperty("lib.dir");
                }
            } catch (IOException e) {
                folder = null;
            }
        }
        return folder == null || folder.isBlank() ? null : Path.of(folder);
    }

    /** The library a load failure names ("libcublas.so.13 not found"), else its first message line. */
    private static String missingLibrary(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            Matcher m = MISSING_LIBRARY.matcher(String.valueOf(t.getMessage()));
            if (m.find()) {
                return m.group(1) + " not found";
            }
        }
        String message = String.valueOf(e.getMessage());
        int newline = message.indexOf('\n');
        return newline < 0 ? message : message.substring(0, newline);
    }

    /**
     * What the Java callbacks (a function model's forward, a user's layer forward, a custom loss)
     * threw, by the call scope of the {@link #call} whose work ran them: a model shared by threads
     * runs its callbacks on native worker threads, so neither "the model's last exception" nor the
     * thread a callback runs on says whose call it was (Note [Call scopes] in psg4j/call_scope.h).
     * The first exception of each scope is kept; its call takes it and drops the scope's entry.
     */
    private static final ConcurrentHashMap<Long, Throwable> CALLBACK_FAILURES = new ConcurrentHashMap<>();
    private static final AtomicLong LAST_CALL_SCOPE = new AtomicLong(NO_CALL_SCOPE);

    /**
     * Records that a Java callback threw {@code t} while working for the call of scope
     * {@code callScope} (the scope the native side handed the callback); the first exception of a
     * scope is the one its call rethrows.
     */
    public static void recordCallbackFailure(long callScope, Throwable t) {
        if (callScope != NO_CALL_SCOPE) {
            CALLBACK_FAILURES.putIfAbsent(callScope, t);
        }
    }

    /**
     * Runs {@code body} (calls into {@link NativeCore}) in a call scope of its own: if a Java
     * callback that ran for it threw, rethrows that exception, unless the native side says the
     * engine cannot run the model, which becomes an {@link UnsupportedModelException} caused by it.
     * Failures of callbacks that the native side recovered from (an engine retrying another way)
     * are dropped. Other native errors become psg4j's typed exceptions.
     */
    public static <T> T call(Supplier<T> body) {
        NativeCore.load();
        long scope = LAST_CALL_SCOPE.incrementAndGet();
        long outer = NativeCore.swap_call_scope(scope);
        try {
            return body.get();
        } catch (RuntimeException e) {
            Throwable callbackFailure = CALLBACK_FAILURES.get(scope);
            RuntimeException nativeFailure = translate(e);
            if (nativeFailure instanceof UnsupportedModelException unsupported && callbackFailure != null) {
                throw new UnsupportedModelException(unsupported.getMessage() + " (the Java code threw: "
                        + callbackFailure + ")", callbackFailure);
            }
            if (callbackFailure != null) {
                throw rethrowable(callbackFailure);
            }
            throw nativeFailure;
        } finally {
            NativeCore.swap_call_scope(outer);
            CALLBACK_FAILURES.remove(scope);
        }
    }

    private static RuntimeException rethrowable(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error err) {
            throw err;
        }
        return new ModelExecutionException("a Java callback threw: " + t, t);
    }

    /**
     * A native vector of {@code tensors}, refusing null or freed ones (which would crash in native
     * code) with a BadInputException naming {@code what}.
     */
    public static TensorVector vector(Collection<Tensor> tensors, String what) {
        return new TensorVector(requireLive(tensors, what).toArray(Tensor[]::new));
    }

    /**
     * {@code tensors}, once each is known to be neither null nor freed (closed): otherwise a
     * BadInputException naming the {@code what} and its position, and what to pass instead.
     */
    public static <C extends Collection<Tensor>> C requireLive(C tensors, String what) {
        BadInputException.requireNonNull(tensors, what + "s", "a list of tensors (an empty one where there are none)");
        int k = 0;
        for (Tensor t : tensors) {
            requireLive(t, what + " " + k++);
        }
        return tensors;
    }

    /** {@code tensor}, unless it is null or freed (closed): then a BadInputException naming it as {@code label}. */
    public static Tensor requireLive(Tensor tensor, String label) {
        if (tensor == null) {
            throw new BadInputException(label + " is null: pass a tensor");
        }
        if (tensor.isNull()) {
            throw new BadInputException(label + " was freed (closed) before psg4j took it: pass live tensors, and "
                    + "close them only after build() (or when done with them)");
        }
        return tensor;
    }

    /**
     * {@code result} of a Java callback ({@code what}), refused unless it is a live, defined tensor:
     * a closed one would be a null pointer in native code.
     */
    public static Tensor requireLiveResult(Tensor result, String what) {
        String problem = result == null ? "null" : result.isNull() ? "a closed (freed) tensor"
                : !result.defined() ? "an undefined tensor" : null;
        if (problem != null) {
            throw new ModelExecutionException(what + " returned " + problem + ": return a live tensor (one not "
                    + "closed, e.g. not made in a try-with-resources block that has ended)", null);
        }
        return result;
    }

    /** Native name and tensor vectors of {@code named}, index-aligned, each tensor checked live by name. */
    public static NativeCore.NamedTensorList namedList(Map<String, Tensor> named, String what) {
        named.forEach((name, tensor) -> requireLive(tensor, what + " '" + name + "'"));
        try (StringVector names = new StringVector(named.keySet().toArray(String[]::new));
             TensorVector tensors = new TensorVector(named.values().toArray(Tensor[]::new))) {
            return call(() -> NativeCore.named_tensor_list(names, tensors));
        }
    }

    /**
     * The entries of a native name → tensor list, in order, as new Java tensor handles sharing
     * their storage: the caller owns them (see {@link #closeAll}).
     */
    public static Map<String, Tensor> toMap(NativeCore.NamedTensorList list) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (long k = 0; k < list.size(); k++) {
            Tensor t = new Tensor();
            list.tensor(k, t);
            out.put(list.name(k), t);
        }
        return out;
    }

    /** Closes every tensor handle of {@code tensors} (a map made by {@link #toMap}, or handed over like one). */
    public static void closeAll(Map<String, Tensor> tensors) {
        tensors.values().forEach(t -> {
            if (t != null) {
                t.close();
            }
        });
    }

    static RuntimeException translate(RuntimeException e) {
        String message = e.getMessage();
        if (e instanceof Psg4jException || message == null || !message.startsWith(PREFIX)) {
            return e;
        }
        int colon = message.indexOf(':', PREFIX.length());
        String kind = message.substring(PREFIX.length(), colon);
        String text = message.substring(colon + 1);
        return switch (kind) {
            case "bad_input" -> new BadInputException(text);
            case "unsupported" -> new UnsupportedModelException(text, null);
            default -> new ModelExecutionException(text, null);
        };
    }
}
