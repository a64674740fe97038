package dev.psg4j.model;

import dev.psg4j.BadInputException;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.Natives;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.AnyModule;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.StringVector;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The registry of C++-frontend layer types that psg4j runs natively and whose parameters its
 * engines can swap: bytedeco's standard layers (Linear, Conv2d, LSTM, ...) and the ones a user
 * registers here. A user's layer type is a name, the parameter slots its forward reads, and the
 * forward itself, in Java:
 *
 * <pre>{@code
 * FrontendLayers.register("Scale", List.of("scale", "shift"),
 *         (x, p) -> x.mul(p.get("scale")).add(p.get("shift")));
 * SequentialImpl seq = new SequentialImpl();
 * seq.push_back("fc", new LinearImpl(4, 3));
 * seq.push_back("scale", FrontendLayers.layer("Scale", Map.of("scale", scale, "shift", shift)));
 * Model model = Models.module(seq);   // vmap engine, microbatch reference and probes all run it
 * }</pre>
 *
 * <p>bytedeco's {@code SequentialImpl} takes only its standard layers or an {@code AnyModule}, and
 * an {@code AnyModule} can only be made natively from a C++ type with a forward; a Java subclass
 * of {@code Module} has none. So a user's layer enters a Sequential as the {@code AnyModule} that
 * {@link #layer(String, Map)} or {@link #layer(Module)} makes: a native layer of the registered
 * type whose forward calls the registered Java forward. A {@code new Module(name)} (or a Java
 * subclass of it) that registers exactly the slots' parameters may also be the model itself
 * ({@code Models.module(myModule)}).
 *
 * <p>The forward is called from native threads, several at once, with the input and the
 * parameters currently in the layer's slots: the layer's own, or the wrapped ones an engine swaps
 * in (so compute with the map's tensors, never with tensors kept elsewhere). Registrations are
 * global and permanent, and safe while other threads run models. An exception the forward
 * throws is rethrown to the caller of the engine or check whose work ran it (each call gets its
 * own callbacks' exception, whichever threads share the model).
 */
public final class FrontendLayers {
    /** At most this many user layer types (a bound of the native registry). */
    public static final int MAX_TYPES = 1024;
    /** At most this many parameter slots per layer type. */
    public static final int MAX_SLOTS = 64;
    /** The longest type or slot name. */
    public static final int MAX_NAME_LENGTH = 200;

    /** A user's layer forward: the output for {@code input}, computed with {@code parameters} (slot name → tensor). */
    @FunctionalInterface
    public interface LayerForward {
        Tensor forward(Tensor input, Map<String, Tensor> parameters);
    }

    private record Registration(String name, List<String> slots, LayerForward forward) {
    }

    private static final Map<Long, Registration> BY_ID = new ConcurrentHashMap<>();
    private static NativeCore.LayerForwardCallback callback; // made on the first registration, kept for good
    private static long nextId;

    private FrontendLayers() {
    }

    /**
     * Registers the layer type {@code typeName}: modules whose {@code name()} is {@code typeName}
     * (the name given to {@code new Module(typeName)}, or to {@link #layer(String, Map)}) run by
     * {@code forward}, which reads the parameters {@code parameterSlots} (each layer of the type
     * registers exactly these, under these names). Throws BadInputException for a null or empty
     * argument, a name already registered or one of a standard layer, or a name or slot list past
     * the bounds ({@link #MAX_NAME_LENGTH}, {@link #MAX_SLOTS}, {@link #MAX_TYPES}).
     */
    public static synchronized void register(String typeName, List<String> parameterSlots, LayerForward forward) {
        BadInputException.requireNonNull(typeName, "typeName", "the layer type's name, as Module.name() reports it");
        BadInputException.requireNonNull(parameterSlots, "parameterSlots",
                "the names of the parameters the layer's forward reads, e.g. List.of(\"weight\", \"bias\")");
        BadInputException.requireNonNull(forward, "forward", "the layer's forward, (input, parameters) -> output");
        if (typeName.length() > MAX_NAME_LENGTH) {
            throw new BadInputException("the layer type name has " + typeName.length() + " characters: give at most "
                    + MAX_NAME_LENGTH);
        }
        if (parameterSlots.size() > MAX_SLOTS) {
            throw new BadInputException("the layer type " + typeName + " names " + parameterSlots.size()
                    + " parameter slots: give at most " + MAX_SLOTS);
        }
        parameterSlots.forEach(slot -> BadInputException.requireNonNull(slot, "a parameter slot of " + typeName,
                "a slot name"));
        Registration registration = new Registration(typeName, List.copyOf(parameterSlots), forward);
        long id = nextId;
        BY_ID.put(id, registration); // before the native side can call it
        try (StringVector slots = new StringVector(registration.slots().toArray(String[]::new))) {
            NativeCore.LayerForwardCallback forwards = callback();
            Natives.call(() -> {
                NativeCore.register_frontend_layer(typeName, slots, id, forwards);
                return null;
            });
            nextId++;
        } catch (RuntimeException e) {
            BY_ID.remove(id);
            throw e;
        }
    }

    /** The layer types whose parameters psg4j's engines can swap: the standard ones, then the user's. */
    public static List<String> registered() {
        try (StringVector names = new StringVector()) {
            Natives.call(() -> {
                NativeCore.frontend_layer_type_names(names);
                return null;
            });
            List<String> out = new ArrayList<>();
            for (long k = 0; k < names.size(); k++) {
                out.add(names.get(k).getString());
            }
            return Collections.unmodifiableList(out);
        }
    }

    /**
     * A new layer of the registered type {@code typeName} whose parameters are {@code parameters}
     * (slot name → tensor, exactly one per slot; the very tensors, shared, not copied: an optimizer
     * step on them is seen), to push into a Sequential with {@code push_back(name, layer)}, or to
     * use as a model on its own through {@code layer.ptr()}. The AnyModule is the caller's; a
     * Sequential keeps its own reference to the layer. Each tensor keeps its requires_grad.
     */
    public static AnyModule layer(String typeName, Map<String, Tensor> parameters) {
        BadInputException.requireNonNull(typeName, "typeName", "a registered layer type (FrontendLayers.register)");
        BadInputException.requireNonNull(parameters, "parameters", "a map {slot name: tensor}");
        if (parameters.size() > MAX_SLOTS) {
            throw new BadInputException("a layer has at most " + MAX_SLOTS + " parameters, got " + parameters.size());
        }
        parameters.forEach((name, tensor) -> {
            BadInputException.requireNonNull(name, "a parameter name of the " + typeName + " layer", "a slot name");
            Natives.requireLive(tensor, "parameter '" + name + "' of the " + typeName + " layer");
        });
        Map<String, Tensor> ordered = new LinkedHashMap<>(parameters);
        AnyModule out = new AnyModule();
        try (StringVector names = new StringVector(ordered.keySet().toArray(String[]::new));
             TensorVector tensors = new TensorVector(ordered.values().toArray(Tensor[]::new))) {
            Natives.call(() -> {
                NativeCore.make_frontend_layer(typeName, names, tensors, out);
                return null;
            });
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
        return out;
    }

    /**
     * A layer like {@link #layer(String, Map)}'s for {@code module}, a {@code new Module(typeName)}
     * (or a Java subclass of it) of a registered type that registered exactly the slots'
     * parameters and no buffers or submodules: the layer holds {@code module}'s parameter tensors
     * themselves, so that it can join a Sequential.
     */
    public static AnyModule layer(Module module) {
        BadInputException.requireNonNull(module, "module", "a Module of a registered layer type");
        if (module.isNull()) {
            throw new BadInputException("the module was freed (closed): pass a live one");
        }
        AnyModule out = new AnyModule();
        try {
            Natives.call(() -> {
                NativeCore.frontend_layer_of(module, out);
                return null;
            });
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
        return out;
    }

    private static synchronized NativeCore.LayerForwardCallback callback() {
        if (callback == null) {
            NativeCore.load();
            callback = new NativeCore.LayerForwardCallback() {
                @Override
                public int call(long callScope, long typeId, Pointer input, Pointer parameters, Pointer output) {
                    return forward(callScope, typeId, input, parameters, output);
                }
            };
        }
        return callback;
    }

    private static int forward(long callScope, long typeId, Pointer input, Pointer parameters, Pointer output) {
        try {
            Registration registration = BY_ID.get(typeId);
            if (registration == null) {
                throw new IllegalStateException("no layer type has the id " + typeId);
            }
            Tensor[] values = new TensorVector(parameters).get();
            Map<String, Tensor> byName = new LinkedHashMap<>();
            for (int k = 0; k < values.length && k < registration.slots().size(); k++) {
                byName.put(registration.slots().get(k), values[k]);
            }
            Tensor result = registration.forward().forward(new Tensor(input), Collections.unmodifiableMap(byName));
            new Tensor(output).put(Natives.requireLiveResult(result, "the forward of layer type " + registration.name()));
            return 0;
        } catch (Throwable t) {
            Natives.recordCallbackFailure(callScope, t);
            return 1;
        }
    }
}
