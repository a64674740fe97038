package dev.psg4j.model;

import dev.psg4j.bridge.CloseGuard;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.NativeCore.NativeModel;
import dev.psg4j.bridge.Natives;
import dev.psg4j.internal.NativeHandles;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.JitModule;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A model psg4j can run: a TorchScript module, a C++-frontend module or a Java function (see
 * {@link Models}). Owns a native handle; close it when done ({@link #close} waits for calls
 * running in other threads, and later uses throw {@link IllegalStateException}).
 *
 * <p>A Model may be shared by any number of threads and engines at once, and nothing psg4j does
 * with it changes what another thread, or the caller's own code, sees: modules run on private
 * replicas of their structure that share the module's parameter tensors (in-place updates, such
 * as an optimizer step, are seen by the next check; parameters registered anew after the Model was
 * made are not), engines swap their parameters into a replica leased to one call, and in train
 * mode each replica has its own copies of the buffers (so a probe never moves BatchNorm's running
 * statistics). Tied parameters (one tensor under several names) are one parameter, named by its
 * first name; {@link #aliases()} lists the others.
 */
public final class Model implements AutoCloseable {
    private final NativeModel handle;
    private final List<Pointer> owned;
    private final Module frontend;    // the caller's module, kept reachable while native code uses it
    private final JitModule torchScript; // the model's own handle onto the TorchScript module
    private final CloseGuard guard = new CloseGuard("Model");

    static {
        NativeHandles.install(new NativeHandles.ModelAccess() {
            @Override
            public NativeModel handle(Model model) {
                return model.handle();
            }

            @Override
            public CloseGuard.Use use(Model model) {
                return model.use();
            }
        });
    }

    /**
     * @param owned       native objects made for this model, freed by {@link #close()}
     * @param frontend    the caller's C++-frontend module, kept reachable while this model lives, never freed here
     * @param torchScript a handle onto the TorchScript module that this model owns (also in {@code owned})
     */
    Model(NativeModel handle, List<Pointer> owned, Module frontend, JitModule torchScript) {
        this.handle = handle;
        this.owned = owned;
        this.frontend = frontend;
        this.torchScript = torchScript;
    }

    /**
     * The C++-frontend module this model wraps ({@link Models#module}), for grad samplers that
     * compute on their own; empty for TorchScript and function models. The module stays its
     * creator's: do not close it, and do not change its parameters while checks use the model.
     */
    public Optional<Module> frontendModule() {
        return Optional.ofNullable(frontend);
    }

    /**
     * The TorchScript module this model wraps ({@link Models#torchScript}), for grad samplers that
     * compute on their own; empty for other models. The handle is the model's and valid until it is
     * closed: do not close it; take {@code new JitModule(handle)} to keep one of your own.
     */
    public Optional<JitModule> torchScriptModule() {
        if (torchScript != null && torchScript.isNull()) {
            throw new IllegalStateException("this Model is closed: create a new one");
        }
        return Optional.ofNullable(torchScript);
    }

    /**
     * Starts a use of the native handle by this library's engines and checks: {@link #close} waits
     * until it has ended. Throws IllegalStateException when the model is closed.
     */
    CloseGuard.Use use() {
        return guard.use();
    }

    /** The native handle, for engines and checks of this library, inside a {@link #use()}. */
    NativeModel handle() {
        if (handle.isNull()) {
            throw new IllegalStateException("this Model is closed: create a new one");
        }
        return handle;
    }

    /**
     * The trainable parameters in named_parameters() order, tied ones once under their first name:
     * name → the parameter itself. The Tensor objects are new handles onto the parameters, the
     * caller's to close (closing one frees the handle, never the parameter).
     */
    public Map<String, Tensor> trainableParameters() {
        try (CloseGuard.Use use = use(); var list = Natives.call(() -> NativeCore.trainable_parameters(handle()))) {
            return Natives.toMap(list);
        }
    }

    /**
     * Tied parameters: first name → the other names the same tensor has (a module used twice, a
     * parameter registered under two names); empty when no parameter is tied. A candidate may name
     * a tied parameter by any of its names.
     */
    public Map<String, List<String>> aliases() {
        try (CloseGuard.Use use = use();
             NativeCore.ParameterAliases aliases = Natives.call(() -> NativeCore.parameter_aliases(handle()))) {
            Map<String, List<String>> out = new LinkedHashMap<>();
            for (long k = 0; k < aliases.size(); k++) {
                List<String> names = new ArrayList<>();
                for (long m = 0; m < aliases.alias_count(k); m++) {
                    names.add(aliases.alias(k, m));
                }
                out.put(aliases.name(k), List.copyOf(names));
            }
            return out;
        }
    }

    public String describe() {
        try (CloseGuard.Use use = use()) {
            return Natives.call(() -> handle().describe());
        }
    }

    @Override
    public String toString() {
        return describe();
    }

    @Override
    public void close() {
        guard.close(() -> {
            handle.close();
            owned.forEach(Pointer::close);
        });
    }
}
