package dev.psg4j.engine;

import dev.psg4j.BadInputException;
import dev.psg4j.internal.NativeHandles;
import dev.psg4j.bridge.CloseGuard;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.NativeCore.LayerCaptureView;
import dev.psg4j.bridge.NativeCore.NativeLoss;
import dev.psg4j.bridge.Natives;
import dev.psg4j.check.Batch;
import dev.psg4j.check.Loss;
import dev.psg4j.check.Reduction;
import dev.psg4j.model.Model;

import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.StringSharedModuleDict;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.LongUnaryOperator;

/**
 * Activations and backprops of every parameterized layer of a model, for grad samplers written
 * the way Opacus's are ({@code opacus/grad_sample/*.py}: a function of (layer, activations,
 * backprops) per layer kind). One batched forward of the batch as given, the batch loss with the
 * reduction over all B samples (a mean loss divides by B, as in training: a sampler multiplies by
 * B for mean, as Opacus's {@code loss_reduction="mean"} does), one backward to the layers' outputs.
 *
 * <p>The model must be a chain of standard layers (a {@code Sequential} of Linear, Conv,
 * Embedding, norms, recurrent layers, activations, ..., C++-frontend or TorchScript) with one
 * input; others are an {@link dev.psg4j.UnsupportedModelException}. A module used twice appears
 * once per use ({@link CapturedLayer#use}). Safe to call from several threads on a shared Model:
 * the forward runs on a replica of the model leased to this call.
 *
 * <p>Ownership: the capture owns every tensor of its layers; {@link #close} frees them.
 */
public final class LayerCapture implements AutoCloseable {
    private final List<CapturedLayer> layers;
    private final List<Tensor> owned;

    private LayerCapture(List<CapturedLayer> layers, List<Tensor> owned) {
        this.layers = List.copyOf(layers);
        this.owned = owned;
    }

    /** Captures {@code model}'s layers on {@code batch}, with {@code loss} reduced by {@code reduction}. */
    public static LayerCapture of(Model model, Batch batch, Loss loss, Reduction reduction) {
        BadInputException.requireNonNull(model, "model", "the Model to capture");
        BadInputException.requireNonNull(batch, "batch", "the batch to run");
        BadInputException.requireNonNull(loss, "loss", "the loss (Loss.L1, ...)");
        BadInputException.requireNonNull(reduction, "reduction", "Reduction.SUM or Reduction.MEAN");
        Map<String, Module> modules = modulesByName(model);
        try (CloseGuard.Use use = NativeHandles.use(model); NativeLoss lossHandle = NativeHandles.newHandle(loss);
             LayerCaptureView view = Natives.call(
                     () -> NativeCore.capture_layers(NativeHandles.handle(model), NativeHandles.handle(batch), lossHandle, reduction.code()))) {
            return read(view, modules);
        }
    }

    /** The captured layer uses in forward order. */
    public List<CapturedLayer> layers() {
        return layers;
    }

    /** The captured uses of layers of this kind ("Linear"), in forward order. */
    public List<CapturedLayer> layers(String kind) {
        return layers.stream().filter(l -> l.kind().equals(kind)).toList();
    }

    @Override
    public void close() {
        owned.forEach(Tensor::close);
        owned.clear();
    }

    private static LayerCapture read(LayerCaptureView view, Map<String, Module> modules) {
        List<CapturedLayer> layers = new ArrayList<>();
        List<Tensor> owned = new ArrayList<>();
        Map<Map<String, String>, Integer> uses = new HashMap<>();
        for (long k = 0; k < view.size(); k++) {
            Map<String, String> parameters = new LinkedHashMap<>();
            for (long m = 0; m < view.parameter_count(k); m++) {
                String trainable = view.parameter_trainable_name(k, m);
                if (!trainable.isEmpty()) {
                    parameters.put(view.parameter_local_name(k, m), trainable);
                }
            }
            Tensor activations = new Tensor();
            Tensor backprops = new Tensor();
            owned.add(activations);
            owned.add(backprops);
            view.activations(k, activations);
            view.backprops(k, backprops);
            int use = uses.merge(parameters, 1, Integer::sum) - 1;
            String name = view.name(k);
            layers.add(new CapturedLayer(name, view.kind(k), use, parameters, options(view, k), activations, backprops,
                    Optional.ofNullable(modules.get(name))));
        }
        return new LayerCapture(layers, owned);
    }

    private static CapturedLayer.LayerOptions options(LayerCaptureView view, long k) {
        long rank = view.spatial_rank(k);
        return new CapturedLayer.LayerOptions(longs(rank, d -> view.stride(k, d)), longs(rank, d -> view.padding(k, d)),
                longs(rank, d -> view.dilation(k, d)), view.groups(k), view.exact_padding(k),
                view.has_padding_idx(k) ? Optional.of(view.padding_idx(k)) : Optional.empty(),
                longs(view.normalized_rank(k), d -> view.normalized_dim(k, d)), view.eps(k), view.training(k));
    }

    private static List<Long> longs(long n, LongUnaryOperator value) {
        List<Long> out = new ArrayList<>();
        for (long d = 0; d < n; d++) {
            out.add(value.applyAsLong(d));
        }
        return out;
    }

    /** The C++-frontend module's submodules by dotted name; empty for other models. */
    private static Map<String, Module> modulesByName(Model model) {
        Optional<Module> root = model.frontendModule();
        Map<String, Module> out = new HashMap<>();
        if (root.isEmpty()) {
            return out;
        }
        StringSharedModuleDict named = root.get().named_modules("", true);
        for (long i = 0; i < named.size(); i++) {
            var item = named.get(i);
            // the root's name is empty, which bytedeco hands back as a null pointer
            out.put(item.key() == null ? "" : item.key().getString(), item.value());
        }
        return out;
    }
}
