package dev.psg4j.bench;

import dev.psg4j.BadInputException;

import java.util.Arrays;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.stream.Collectors;

/** What {@code psg4j bench} times per suite model and batch size; each is one {@code @Benchmark} of {@link SuiteBenchmark}. */
public enum BenchMethod {
    /** The vmap engine's per-sample gradients. */
    VMAP("vmap", SuiteBenchmark::vmap),
    /** The microbatch engine's (the reference's) per-sample gradients. */
    MICROBATCH("microbatch", SuiteBenchmark::microbatch),
    /**
     * A full exact check of the vmap engine, as Opacus's check runs: check set-up, the probes, the
     * candidate and the streamed reference for both reductions (sum and mean).
     */
    CHECK_EXACT("checkExact", SuiteBenchmark::checkExact),
    /** The same full check in sketch mode (random projections of the per-sample gradients), both reductions. */
    CHECK_SKETCH("checkSketch", SuiteBenchmark::checkSketch),
    /** The probes alone (finite values, determinism, exhaustive batch independence): 2⌈log₂B⌉ VJPs and 3 forwards. */
    PROBE("probe", SuiteBenchmark::probe),
    /** One plain batched backward, no per-sample gradients: the floor the others are measured against. */
    BACKWARD("backward", SuiteBenchmark::backward),
    /**
     * A sketch check inside a training loop, both reductions: one check reused from step to step
     * (probes cached), the candidate the step's own gradients, computed before the timing.
     */
    CHECK_IN_LOOP("checkInLoop", SuiteBenchmark::checkInLoop),
    /** A DP-SGD step: the vmap engine's per-sample gradients, flat clipping, Gaussian noise, the update in place. */
    DP_STEP("dpStep", SuiteBenchmark::dpStep),
    /** The same DP-SGD step with a sketch check of its per-sample gradients (reused, probes cached) before the clipping. */
    DP_STEP_VERIFIED("dpStepVerified", SuiteBenchmark::dpStepVerified),
    /**
     * The grad sampler {@code --engine NAME} names (a built-in or a plug-in's), timed like vmap;
     * reports show the engine's name. Only with an engine given.
     */
    ENGINE("engine", SuiteBenchmark::engine);

    private final String benchmarkName;
    private final Consumer<SuiteBenchmark> call;

    BenchMethod(String benchmarkName, Consumer<SuiteBenchmark> call) {
        this.benchmarkName = benchmarkName;
        this.call = call;
    }

    /** One call of the method on a set-up benchmark, as JMH times it (for the memory measurement). */
    void callOnce(SuiteBenchmark benchmark) {
        call.accept(benchmark);
    }

    /** Whether it times a grad sampler, which is verified against the reference at every B (vmap, engine). */
    public boolean isSampler() {
        return this == VMAP || this == ENGINE;
    }

    /** Whether it runs the vmap engine's gradients through a sketch check (which the bench first verifies in sketch mode). */
    public boolean isSketch() {
        return this == CHECK_SKETCH || this == CHECK_IN_LOOP || this == DP_STEP_VERIFIED;
    }

    /** The name used on the command line and in reports: lower case, words joined by '-' (check-exact). */
    public String label() {
        return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    /** The {@code @Benchmark} method of {@link SuiteBenchmark} that times it (a Java identifier). */
    public String benchmarkName() {
        return benchmarkName;
    }

    /** The method labelled {@code name} (case and surrounding blanks ignored). */
    public static BenchMethod named(String name) {
        String key = name.strip().toLowerCase(Locale.ROOT);
        return Arrays.stream(values()).filter(m -> m.label().equals(key)).findFirst().orElseThrow(() ->
                new BadInputException("unknown method '" + name.strip() + "': use a comma list of " + labels()));
    }

    /** The method whose {@code @Benchmark} is {@code benchmarkName}. */
    static BenchMethod ofBenchmark(String benchmarkName) {
        return Arrays.stream(values()).filter(m -> m.benchmarkName.equals(benchmarkName)).findFirst()
                .orElseThrow(() -> new IllegalStateException("no bench method times " + benchmarkName));
    }

    /** Every label, comma-separated, in declaration order. */
    public static String labels() {
        return Arrays.stream(values()).map(BenchMethod::label).collect(Collectors.joining(", "));
    }
}
