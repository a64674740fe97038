package dev.psg4j.check;

import dev.psg4j.report.Diagnosis;

import java.util.List;
import java.util.function.Function;

/**
 * The probes' last findings for a reusable check: batch independence and determinism are
 * properties of the model, so one probe serves every batch of the same layout (shapes and dtypes
 * of inputs and targets) until {@code every} runs have passed (0: never expires), whatever the
 * parameters became meanwhile (a training loop's steps); past that, or for a new layout, the
 * model's own memo ({@link ProbeMemo}) answers where its parameters have not changed. Thread-safe; two
 * threads may both probe a new layout, and either result is kept.
 */
final class ProbeCache {
    private final int every;
    private List<String> layout;
    private List<Diagnosis> diagnoses;
    private long runsSinceProbe;

    ProbeCache(int every) {
        this.every = every;
    }

    /** The diagnoses of {@code batch}'s layout, probing with {@code probe} when there are none yet. */
    List<Diagnosis> diagnoses(Batch batch, Function<Batch, List<Diagnosis>> probe) {
        List<String> key = ProbeMemo.signature(batch);
        synchronized (this) {
            if (key.equals(layout) && (every == 0 || runsSinceProbe < every)) {
                runsSinceProbe++;
                return diagnoses;
            }
        }
        List<Diagnosis> fresh = List.copyOf(probe.apply(batch));
        synchronized (this) {
            layout = key;
            diagnoses = fresh;
            runsSinceProbe = 1;
        }
        return fresh;
    }
}
