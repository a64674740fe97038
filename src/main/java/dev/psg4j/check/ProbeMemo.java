package dev.psg4j.check;

import dev.psg4j.model.Model;
import dev.psg4j.report.Diagnosis;

import org.bytedeco.pytorch.LongArrayRef;
import org.bytedeco.pytorch.LongVector;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.function.Supplier;

/**
 * What the probes found, kept per {@link Model} (weakly: it goes with the model) for every check
 * of it, new or reused: a probe's verdict holds for the model's parameters as they were and a batch
 * of one signature, so the key is the batch's signature (shapes and dtypes of the inputs and
 * targets, their batch dimensions, the samples a report names) and each trainable parameter's
 * version counter and storage (an in-place update, an optimizer step, a {@code set_data} all
 * change it). A later probe with the same key costs the key's computation only; a changed key
 * probes again. The probes are exact and exhaustive either way: a hit replays the findings of the
 * same probe on the same parameters. Thread-safe; two threads may both probe a new key, and
 * either result is kept. Each model keeps its {@link #SIGNATURES} latest keys.
 */
final class ProbeMemo {
    /** The keys a model keeps (a loop alternating train and validation batches of two shapes hits both). */
    static final int SIGNATURES = 4;

    private static final Map<Model, Map<List<Object>, List<Diagnosis>>> MEMO =
            Collections.synchronizedMap(new WeakHashMap<>());

    private ProbeMemo() {
    }

    /** The probes' findings for {@code model} on {@code batch}, running {@code probe} on a new key. */
    static List<Diagnosis> diagnoses(Model model, Batch batch, int probeSamples, Supplier<List<Diagnosis>> probe) {
        List<Object> key = key(model, batch, probeSamples);
        Map<List<Object>, List<Diagnosis>> kept = MEMO.get(model);
        if (kept != null) {
            synchronized (kept) {
                List<Diagnosis> found = kept.get(key);
                if (found != null) {
                    return found;
                }
            }
        }
        List<Diagnosis> fresh = List.copyOf(probe.get());
        Map<List<Object>, List<Diagnosis>> entries = MEMO.computeIfAbsent(model, m -> newEntries());
        synchronized (entries) {
            entries.put(key, fresh);
        }
        return fresh;
    }

    /** Forgets what the probes found for {@code model}: its next check probes again. */
    static void forget(Model model) {
        MEMO.remove(model);
    }

    private static Map<List<Object>, List<Diagnosis>> newEntries() {
        return new LinkedHashMap<>(8, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<List<Object>, List<Diagnosis>> eldest) {
                return size() > SIGNATURES;
            }
        };
    }

    /** The batch's signature and the parameters' state (version counter, storage address) in order. */
    static List<Object> key(Model model, Batch batch, int probeSamples) {
        List<Object> key = new ArrayList<>();
        key.add(signature(batch));
        key.add(probeSamples);
        Map<String, Tensor> parameters = model.trainableParameters();
        try {
            for (Map.Entry<String, Tensor> p : parameters.entrySet()) {
                Tensor t = p.getValue();
                key.add(p.getKey());
                key.add(t.__dispatch__version());
                key.add(t.data_ptr().address());
            }
        } finally {
            parameters.values().forEach(Tensor::close);
        }
        return key;
    }

    /** Shapes and dtypes of the inputs and targets and the batch dimensions: what a probe's verdict is for. */
    static List<String> signature(Batch batch) {
        List<String> key = new ArrayList<>();
        key.add("device " + batch.device() + ", batch dims " + batch.batchDim() + " " + batch.targetBatchDim());
        describe(batch.inputs(), "input", key);
        describe(batch.targets(), "target", key);
        return key;
    }

    private static void describe(List<Tensor> tensors, String role, List<String> key) {
        for (Tensor t : tensors) {
            try (LongArrayRef sizes = t.sizes(); LongVector shape = sizes.vec()) {  // freed now, not by the GC
                key.add(role + " " + t.scalar_type() + " " + Arrays.toString(shape.get()));
            }
        }
    }
}
