package dev.psg4j.model;

import dev.psg4j.BadInputException;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.Natives;
import dev.psg4j.internal.InputFiles;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.JitModule;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.StringVector;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Factories for {@link Model}. */
public final class Models {
    private Models() {
    }

    /**
     * A TorchScript module (scripted or traced); its forward runs natively. The Model holds a
     * reference of its own to the module object, so {@code module} (the Java handle) stays the
     * caller's to close, at any time.
     */
    public static Model torchScript(JitModule module) {
        BadInputException.requireNonNull(module, "module", "a TorchScript module (Models.torchScript(Path) loads one)");
        NativeCore.NativeModel handle = Natives.call(() -> NativeCore.torchscript_model(module));
        JitModule own = new JitModule(module);
        return new Model(handle, List.of(own), null, own);
    }

    /** Loads a file written by {@code torch.jit.save} / {@code ScriptModule.save}; the Model owns what it loaded. */
    public static Model torchScript(Path file) {
        try (JitModule module = loadTorchScript(file)) {
            return torchScript(module);
        }
    }

    /**
     * Loads a file written by {@code torch.jit.save} onto {@code device} ("cpu", "cuda", "cuda:N"):
     * the module's parameters and buffers are moved there before the Model is made (the Model owns
     * what it loaded, so nobody else sees the move). A bad device is a BadInputException.
     */
    public static Model torchScript(Path file, String device) {
        String on = dev.psg4j.check.Devices.canonical(device);
        try (JitModule module = loadTorchScript(file)) {
            if (!on.equals("cpu")) {
                try (org.bytedeco.pytorch.Device target = new org.bytedeco.pytorch.Device(on)) {
                    module.to(target);
                }
            }
            return torchScript(module);
        }
    }

    /**
     * Loads a TorchScript file in the train/eval mode it was saved in; a missing, corrupt or
     * non-TorchScript file, or one that is no regular file or is larger than the memory available
     * ({@link InputFiles}), is a BadInputException.
     */
    public static JitModule loadTorchScript(Path file) {
        BadInputException.requireNonNull(file, "file", "the path of a TorchScript file");
        InputFiles.requireReadable(file, "model file", "a TorchScript file written by torch.jit.script(model).save(path)");
        NativeCore.load();
        try {
            // Kept in the mode it was saved in: a model saved in train mode (BatchNorm batch
            // statistics, dropout) is what the probes must see, not a quietly fixed copy.
            return org.bytedeco.pytorch.global.torch.load(file.toString());
        } catch (RuntimeException e) {
            throw new BadInputException("cannot load " + file + " as a TorchScript module ("
                    + firstLine(e.getMessage()) + "): save the model with torch.jit.script(model).save(path)"
                    + " or torch.jit.trace(model, x).save(path), not torch.save", e);
        }
    }

    /**
     * A C++-frontend module built in Java: a {@code Sequential} of standard layers, or one standard
     * layer: Linear, Bilinear (two inputs), Conv1d/2d/3d, ConvTranspose1d/2d/3d, Embedding,
     * EmbeddingBag, LayerNorm, GroupNorm, InstanceNorm1d/2d/3d, BatchNorm1d/2d/3d, RNN/LSTM/GRU
     * (their output sequence, from a zero initial state) and MultiheadAttention (self-attention, its
     * attention output; inputs time-first [L, N, E]). Parameter-free layers (activations, pooling,
     * Flatten, Dropout) may sit in a Sequential. Its forward runs natively.
     *
     * <p>Layers of one's own: register the type with {@link FrontendLayers#register} (its name,
     * the parameter slots its forward reads, and the forward in Java), then push
     * {@link FrontendLayers#layer(String, Map)} into the Sequential, or give a
     * {@code new Module(typeName)} holding the slots' parameters as the module itself; an
     * exception the layer's forward throws is rethrown by the engine or check that ran it. A layer
     * with parameters whose type is not registered runs only on the microbatch engine (the vmap
     * engine's BadInputException lists the registered types: {@link FrontendLayers#registered()}).
     */
    public static Model module(Module module) {
        BadInputException.requireNonNull(module, "module", "a C++-frontend module (a SequentialImpl, a LinearImpl, ...)");
        return new Model(Natives.call(() -> NativeCore.frontend_model(module)), List.of(), module, null);
    }

    /**
     * A model whose forward is Java code in functional form over {@code parameters} (name → tensor;
     * those with requires_grad are the trainable ones), in the order given. The reference calls it
     * once per sample, possibly from several threads, with these parameters; the vmap engine calls
     * it once per chunk with its own.
     */
    public static Model function(String description, Map<String, Tensor> parameters, ForwardFunction forward) {
        BadInputException.requireNonNull(description, "description", "a name for the model, used in messages");
        BadInputException.requireNonNull(forward, "forward", "the model's forward, (inputs, parameters) -> output");
        BadInputException.requireNonNull(parameters, "parameters", "a map {name: tensor} of the model's parameters");
        if (parameters.isEmpty()) {
            throw new BadInputException("a function model needs at least one parameter tensor");
        }
        parameters.forEach((name, tensor) -> {
            BadInputException.requireNonNull(name, "a parameter name of " + description, "a name for each parameter");
            BadInputException.requireNonNull(tensor, "parameter '" + name + "' of " + description,
                    "a tensor (requires_grad for a trainable one)");
        });
        List<String> order = List.copyOf(parameters.keySet());
        NativeCore.ForwardCallback callback = new NativeCore.ForwardCallback() {
            @Override
            public int call(long callScope, Pointer inputs, Pointer given, Pointer output) {
                try {
                    TensorVector in = new TensorVector(inputs);
                    Tensor[] values = new TensorVector(given).get();
                    Map<String, Tensor> byName = new LinkedHashMap<>();
                    for (int k = 0; k < values.length; k++) {
                        byName.put(order.get(k), values[k]);
                    }
                    Tensor result = forward.forward(Arrays.asList(in.get()), byName);
                    new Tensor(output).put(Natives.requireLiveResult(result, "the forward of " + description));
                    return 0;
                } catch (Throwable t) {
                    Natives.recordCallbackFailure(callScope, t);
                    return 1;
                }
            }
        };
        StringVector names = new StringVector(parameters.keySet().toArray(String[]::new));
        TensorVector tensors = Natives.vector(parameters.values(), "parameter");
        var handle = Natives.call(() -> NativeCore.function_model(names, tensors, callback, description));
        return new Model(handle, List.of(callback, names, tensors), null, null);
    }

    /**
     * A layer to push into a {@code SequentialImpl}, when bytedeco allocates its type with plain
     * {@code new} rather than {@code make_shared} (MaxPool2d, BatchNorm, InstanceNorm among them):
     * push_back then wraps it in a shared_ptr of its own that owns it, so the Java object must not
     * free it too, or the Sequential holds a dangling layer once the garbage collector has run (a
     * crash in the next forward). Returns {@code layer}, no longer freed by Java.
     */
    public static <M extends Module> M forSequential(M layer) {
        layer.deallocate(false);
        return layer;
    }

    private static String firstLine(String message) {
        if (message == null) {
            return "no message";
        }
        int newline = message.indexOf('\n');
        return newline < 0 ? message : message.substring(0, newline);
    }
}
