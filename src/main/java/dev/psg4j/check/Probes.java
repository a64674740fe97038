package dev.psg4j.check;

import dev.psg4j.BadInputException;
import dev.psg4j.bridge.NativeCore;
import dev.psg4j.bridge.NativeCore.IndependenceView;
import dev.psg4j.bridge.Natives;
import dev.psg4j.model.Model;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.ProbeReport;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * Black-box probes of a model on a real batch, run natively. {@link #batchIndependence} asks
 * whether sample i's output depends on other samples (exactly, by input gradients for float
 * inputs; by changing other samples one at a time for integer inputs such as token ids) and,
 * for a chain of submodules (a Sequential, a TorchScript module whose children run in order),
 * names the first submodule where mixing starts. {@link #determinism} runs the same forward twice.
 */
public final class Probes {
    /** Samples probed by default: the first, the last and one between. */
    public static final int DEFAULT_PROBE_SAMPLES = 3;

    private static final double TOLERANCE = 1e-6;

    private Probes() {
    }

    /**
     * What the batch-independence probe found.
     *
     * @param leaks        probed sample → the other samples its output depends on (empty lists when clean)
     * @param differsAlone probed samples whose output changes when run alone (mixing the routes above
     *                     cannot attribute: a batch statistic through .item(), a data-dependent branch)
     * @param method       "input_gradient" or "perturbation"
     * @param mixingModule the first submodule where mixing appears, when it could be localized
     */
    public record BatchIndependence(boolean independent, String method, Map<Integer, List<Integer>> leaks,
                                    List<Integer> differsAlone, Optional<String> mixingModule) {
        /** A {@code batch_mixing} diagnosis, or none when the model is batch-independent. */
        public Optional<Diagnosis> diagnosis() {
            if (independent) {
                return Optional.empty();
            }
            List<Integer> affected = new ArrayList<>(leaks.entrySet().stream().filter(e -> !e.getValue().isEmpty())
                    .map(Map.Entry::getKey).toList());
            differsAlone.stream().filter(i -> !affected.contains(i)).forEach(affected::add);
            List<String> findings = new ArrayList<>();
            leaks.forEach((sample, from) -> {
                if (!from.isEmpty()) {
                    findings.add("sample " + sample + "'s output depends on " + samples(from));
                }
            });
            if (!findings.isEmpty()) {
                int last = findings.size() - 1;
                findings.set(last, findings.get(last) + " (found by " + method.replace('_', ' ') + ")");
            }
            if (!differsAlone.isEmpty()) {
                findings.add(differsAlone.size() == 1
                        ? "sample " + differsAlone.get(0) + "'s output changes when it runs alone"
                        : "the outputs of samples " + differsAlone.stream().map(String::valueOf)
                                .collect(Collectors.joining(", ")) + " change when they run alone");
            }
            String where = mixingModule.map(m -> " Mixing starts in submodule '" + m + "'.").orElse("");
            String message = "batch mixing: " + String.join("; ", findings) + "." + where
                    + " A sample's gradient then depends on the rest of the batch, so per-sample clipping does not"
                    + " bound its influence: use per-sample normalization (GroupNorm, LayerNorm, BatchNorm in"
                    + " eval mode) and keep operations within each sample.";
            return Optional.of(new Diagnosis("batch_mixing", mixingModule.orElse(null), affected, message));
        }

        private static String samples(List<Integer> from) {
            if (from.size() > 6) {
                return from.size() + " other samples (" + from.get(0) + ", " + from.get(1) + ", ..., "
                        + from.get(from.size() - 1) + ")";
            }
            return (from.size() == 1 ? "sample " : "samples ")
                    + from.stream().map(String::valueOf).collect(Collectors.joining(", "));
        }
    }

    /** What the determinism probe found: the largest difference between two forwards. */
    public record Determinism(boolean deterministic, double maxAbsDiff) {
        /** A {@code non_deterministic} diagnosis, or none. */
        public Optional<Diagnosis> diagnosis() {
            if (deterministic) {
                return Optional.empty();
            }
            return Optional.of(new Diagnosis("non_deterministic", null, List.of(), String.format(
                    "non-deterministic forward: two forwards of the same batch differ by up to %.3g; put the model"
                            + " in eval mode (dropout) or fix the seed, or every engine will seem to disagree with"
                            + " the reference", maxAbsDiff)));
        }
    }

    /** Probes {@link #DEFAULT_PROBE_SAMPLES} samples of {@code batch}. */
    public static BatchIndependence batchIndependence(Model model, Batch batch) {
        return batchIndependence(model, batch, DEFAULT_PROBE_SAMPLES);
    }

    public static BatchIndependence batchIndependence(Model model, Batch batch, int probeSamples) {
        if (probeSamples < 1) {
            throw new BadInputException("probe at least one sample, got " + probeSamples);
        }
        try (IndependenceView view = Natives.call(List.of(model.callbackFailure()),
                () -> NativeCore.probe_batch_independence(model.handle(), batch.handle(), probeSamples, TOLERANCE))) {
            Map<Integer, List<Integer>> leaks = new LinkedHashMap<>();
            for (long k = 0; k < view.probed_count(); k++) {
                List<Integer> from = new ArrayList<>();
                for (long m = 0; m < view.leak_count(k); m++) {
                    from.add((int) view.leak(k, m));
                }
                leaks.put((int) view.probed_sample(k), List.copyOf(from));
            }
            List<Integer> differsAlone = new ArrayList<>();
            for (long k = 0; k < view.differs_alone_count(); k++) {
                differsAlone.add((int) view.differs_alone(k));
            }
            String module = view.mixing_module();
            return new BatchIndependence(view.independent(), view.method(), leaks, List.copyOf(differsAlone),
                    module.isEmpty() ? Optional.empty() : Optional.of(module));
        }
    }

    public static Determinism determinism(Model model, Batch batch) {
        double diff = Natives.call(List.of(model.callbackFailure()),
                () -> NativeCore.probe_determinism(model.handle(), batch.handle()));
        return new Determinism(diff == 0.0, diff);
    }

    /** The diagnoses of both probes (empty when the model passes them). */
    public static List<Diagnosis> diagnose(Model model, Batch batch) {
        return report(model, batch, DEFAULT_PROBE_SAMPLES).diagnoses();
    }

    /**
     * Both probes: determinism first, then, for a deterministic forward (comparing forwards of a
     * random one would see leaks everywhere), batch independence.
     */
    public static ProbeReport report(Model model, Batch batch, int probeSamples) {
        List<Diagnosis> diagnoses = new ArrayList<>();
        Determinism determinism = determinism(model, batch);
        determinism.diagnosis().ifPresent(diagnoses::add);
        if (!determinism.deterministic()) {
            return new ProbeReport(false, batch.size(), false, determinism.maxAbsDiff(), null, null, null, null, null,
                    diagnoses);
        }
        BatchIndependence independence = batchIndependence(model, batch, probeSamples);
        independence.diagnosis().ifPresent(diagnoses::add);
        return new ProbeReport(independence.independent(), batch.size(), true, 0.0, independence.independent(),
                independence.method(), independence.leaks(), independence.differsAlone(),
                independence.mixingModule().orElse(null), diagnoses);
    }
}
