package dev.psg4j.conform;

import dev.psg4j.BadInputException;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Devices;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Reduction;
import dev.psg4j.check.Tolerance;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.ConformanceReport;
import dev.psg4j.report.ConformanceRow;
import dev.psg4j.report.ConformanceVerdict;
import dev.psg4j.report.Failure;
import dev.psg4j.report.FailureKind;
import dev.psg4j.report.ParamReport;
import dev.psg4j.report.ReductionReport;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Runs a grad sampler over psg4j's {@link LayerMatrix} (and, when asked, a folder of TorchScript
 * configurations, {@link TorchScriptMatrix}): every configuration × batch size × reduction is a
 * row, checked in exact mode against the microbatch reference. A configuration holding a layer
 * kind the sampler does not claim ({@link GradSampler#supportsLayer}) is skipped and listed as
 * such; a sampler that throws on a row makes that row an error, and the run goes on.
 *
 * <p>The checks run without the probes: the matrix's configurations are deterministic and batch
 * independent by construction (eval mode, no random ops; the vmap tests run the probes over them),
 * and the probes would cost more than the check itself. Each row runs in a {@link PointerScope} of
 * its own, which frees every tensor and module it made. A Conformance runs one {@link #run} at a time.
 *
 * <pre>{@code
 * ConformanceReport report = Conformance.of(mySampler).batchSizes(3, 8).run();
 * }</pre>
 */
public final class Conformance {
    /** The default batch sizes (the batch-of-1 configurations run at B = 1 besides). */
    public static final long[] DEFAULT_BATCH_SIZES = {3, 8};
    /** The largest batch size a run takes. */
    public static final long MAX_BATCH_SIZE = 256;
    /** The most batch sizes a run takes. */
    public static final int MAX_BATCH_SIZES = 16;

    private final GradSampler sampler;
    private long[] batchSizes = DEFAULT_BATCH_SIZES.clone();
    private List<Reduction> reductions = List.of(Reduction.SUM, Reduction.MEAN);
    private List<Configuration> configurations = LayerMatrix.configurations();
    private Pattern only;
    private Tolerance tolerance = Tolerance.DEFAULT;
    private String device = Devices.CPU;
    private Consumer<ConformanceRow> onRow = row -> { };
    /** Layer kinds by configuration name, as built during the current run. */
    private final Map<String, List<String>> kindsSeen = new HashMap<>();

    private Conformance(GradSampler sampler) {
        this.sampler = sampler;
    }

    /** A run of {@code sampler} over the layer matrix, B in {3, 8}, both reductions. */
    public static Conformance of(GradSampler sampler) {
        return new Conformance(BadInputException.requireNonNull(sampler, "sampler", "the GradSampler to run"));
    }

    /**
     * Where every row runs: "cpu" (the default), "cuda" or "cuda:N". Each configuration's module
     * (built by the run, so its own) and batch are moved there before its check; a bad device is a
     * BadInputException here.
     */
    public Conformance device(String device) {
        this.device = Devices.canonical(device);
        return this;
    }

    /** The batch sizes each configuration runs at (the batch-of-1 ones always run at 1). */
    public Conformance batchSizes(long... sizes) {
        BadInputException.requireNonNull(sizes, "batch sizes", "e.g. 3, 8");
        if (sizes.length == 0 || sizes.length > MAX_BATCH_SIZES) {
            throw new BadInputException("give 1 to " + MAX_BATCH_SIZES + " batch sizes, got " + sizes.length);
        }
        for (long b : sizes) {
            if (b < 1 || b > MAX_BATCH_SIZE) {
                throw new BadInputException("batch size " + b + " is out of range: each must be in [1, "
                        + MAX_BATCH_SIZE + "] (the matrix is about layers, not scale; use psg4j bench for large B)");
            }
        }
        this.batchSizes = new LinkedHashSet<>(Arrays.stream(sizes).boxed().toList()).stream()
                .mapToLong(Long::longValue).toArray();
        return this;
    }

    /** The reductions each row is checked for (both by default; one row per reduction). */
    public Conformance reductions(Reduction... reductions) {
        BadInputException.requireNonNull(reductions, "reductions", "Reduction.SUM and/or Reduction.MEAN");
        if (reductions.length == 0) {
            throw new BadInputException("give at least one reduction");
        }
        for (Reduction r : reductions) {
            BadInputException.requireNonNull(r, "a reduction", "Reduction.SUM or Reduction.MEAN");
        }
        this.reductions = List.copyOf(new LinkedHashSet<>(Arrays.asList(reductions)));
        return this;
    }

    /** Runs only the configurations whose name {@code regex} finds (Matcher.find); a bad regex is BadInputException. */
    public Conformance only(String regex) {
        BadInputException.requireNonNull(regex, "regex", "a regular expression over configuration names");
        try {
            this.only = Pattern.compile(regex);
        } catch (PatternSyntaxException e) {
            throw new BadInputException("--only '" + regex + "' is not a regular expression: "
                    + e.getDescription() + " (e.g. --only 'Conv2d|Linear')");
        }
        return this;
    }

    /** Runs these configurations instead of the layer matrix. */
    public Conformance configurations(List<Configuration> configurations) {
        BadInputException.requireNonNull(configurations, "configurations", "e.g. LayerMatrix.configurations()");
        this.configurations = List.copyOf(configurations);
        return this;
    }

    /** Adds these configurations (e.g. {@link TorchScriptMatrix#load}) after those already set. */
    public Conformance add(List<Configuration> more) {
        BadInputException.requireNonNull(more, "configurations", "e.g. TorchScriptMatrix.load(dir)");
        List<Configuration> all = new ArrayList<>(configurations);
        all.addAll(more);
        this.configurations = List.copyOf(all);
        return this;
    }

    public Conformance tolerance(double atol, double rtol) {
        this.tolerance = new Tolerance(atol, rtol);
        return this;
    }

    /** Called with each row as it is decided (progress). */
    public Conformance onRow(Consumer<ConformanceRow> onRow) {
        this.onRow = BadInputException.requireNonNull(onRow, "onRow", "a consumer of rows");
        return this;
    }

    /** The configurations the run will cover (after {@link #only}). */
    public List<Configuration> selected() {
        List<Configuration> out = configurations.stream().filter(c -> only == null || only.matcher(c.name()).find())
                .toList();
        if (out.isEmpty() && only == null) {
            throw new BadInputException("no configurations to run: give some with configurations(...)");
        }
        if (out.isEmpty()) {
            throw new BadInputException("no configuration matches --only '" + only.pattern() + "' among "
                    + configurations.size() + ": match part of a name, e.g. 'Linear' or 'Conv2d.*groups'");
        }
        return out;
    }

    /** Runs every row and reports; never throws for a sampler's failure (that is an error row). */
    public ConformanceReport run() {
        List<Configuration> selected = selected();
        kindsSeen.clear();
        long start = System.nanoTime();
        List<ConformanceRow> rows = new ArrayList<>();
        for (Configuration c : selected) {
            for (long b : c.batchSizes(batchSizes)) {
                for (Reduction reduction : reductions) {
                    ConformanceRow row = row(c, b, reduction);
                    rows.add(row);
                    onRow.accept(row);
                }
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        return ConformanceReport.of(sampler.name(), Arrays.stream(batchSizes).boxed().toList(),
                reductions.stream().map(Reduction::label).toList(), tolerance.atol(), tolerance.rtol(), seconds, rows);
    }

    private ConformanceRow row(Configuration c, long b, Reduction reduction) {
        long start = System.nanoTime();
        RowOutcome outcome;
        try (PointerScope scope = new PointerScope()) {
            outcome = decide(c, b, reduction);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        return outcome.toRow(c.name(), reduction.label(), b, seconds);
    }

    private RowOutcome decide(Configuration c, long b, Reduction reduction) {
        List<String> known = kindsSeen.get(c.name());
        if (known != null) {  // a configuration's layer kinds do not change with B: skip without building it again
            List<String> unsupported = unsupported(known);
            if (unsupported != null && !unsupported.isEmpty()) {
                return RowOutcome.skipped(known, "the sampler does not claim " + String.join(", ", unsupported));
            }
        }
        torch.manual_seed(seed(c.name(), b));
        Instance instance;
        try {
            instance = c.build().apply(b);
        } catch (RuntimeException e) {
            return RowOutcome.error(List.of(), "building the configuration failed: " + describe(e));
        }
        try (instance) {
            List<String> kinds = instance.layerKinds();
            kindsSeen.put(c.name(), kinds);
            List<String> unsupported;
            try {
                unsupported = kinds.stream().filter(k -> !sampler.supportsLayer(k)).toList();
            } catch (RuntimeException e) {
                return RowOutcome.error(kinds, "supportsLayer threw " + describe(e));
            }
            if (!unsupported.isEmpty()) {
                return RowOutcome.skipped(kinds, "the sampler does not claim " + String.join(", ", unsupported));
            }
            try {
                moveModule(instance);
            } catch (RuntimeException e) {
                return RowOutcome.error(kinds, "moving the configuration to " + device + " failed: " + describe(e));
            }
            // The check copies the batch onto its device.
            try (PerSampleCheck check = PerSampleCheck.builder().model(instance.model()).inputs(instance.inputs())
                    .targets(instance.targets()).batchDim(instance.batchDim()).targetBatchDim(instance.targetBatchDim())
                    .loss(instance.loss()).reduction(reduction).probes(false).device(device)
                    .tolerance(tolerance.atol(), tolerance.rtol()).build()) {
                return RowOutcome.of(kinds, check.run(sampler));
            } catch (RuntimeException | LinkageError | AssertionError e) {
                return RowOutcome.error(kinds, sampler.name() + " threw " + describe(e));
            }
        }
    }

    /**
     * Moves the module of a configuration this run built (so nobody else's) onto the run's device,
     * in place: LibTorch's Module.to swaps each parameter's data, which the Model's replicas share.
     */
    private void moveModule(Instance instance) {
        if (device.equals(Devices.CPU)) {
            return;
        }
        try (org.bytedeco.pytorch.Device target = new org.bytedeco.pytorch.Device(device)) {
            instance.model().frontendModule().ifPresent(m -> m.to(target, false));
            instance.model().torchScriptModule().ifPresent(m -> m.to(target));
        }
    }

    /** The kinds the sampler does not claim, or null when supportsLayer throws (the row then says so). */
    private List<String> unsupported(List<String> kinds) {
        try {
            return kinds.stream().filter(k -> !sampler.supportsLayer(k)).toList();
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** The same seed for a configuration at a batch size every run. */
    static long seed(String name, long batchSize) {
        return name.hashCode() * 1_000_003L + batchSize;
    }

    private static String describe(Throwable e) {
        String message = e.getMessage() == null ? "" : e.getMessage();
        int newline = message.indexOf('\n');
        return e.getClass().getSimpleName() + (message.isEmpty() ? "" : ": "
                + (newline < 0 ? message : message.substring(0, newline)));
    }

    /** A row's verdict and numbers, before its name and time are known. */
    private record RowOutcome(ConformanceVerdict verdict, List<String> kinds, Double maxAbsErr, Double maxRelErr,
                              Double maxTolRatio, String param, Integer sample, FailureKind kind, String message) {
        static RowOutcome skipped(List<String> kinds, String why) {
            return new RowOutcome(ConformanceVerdict.SKIPPED, kinds, null, null, null, null, null, null, why);
        }

        static RowOutcome error(List<String> kinds, String why) {
            return new RowOutcome(ConformanceVerdict.ERROR, kinds, null, null, null, null, null, null, why);
        }

        /** The check's one reduction: the worst parameter (failing ones first), its failure, its errors. */
        static RowOutcome of(List<String> kinds, CheckReport report) {
            ReductionReport reduction = report.reductions().get(0);
            Comparator<ParamReport> byRatio = Comparator.comparing(ParamReport::maxTolRatio,
                    Comparator.nullsFirst(Comparator.naturalOrder()));
            Optional<ParamReport> worst = reduction.params().stream().filter(p -> !p.passed()).max(byRatio);
            if (worst.isEmpty()) {
                ParamReport closest = reduction.params().stream().max(byRatio).orElse(null);
                return new RowOutcome(ConformanceVerdict.PASSED, kinds, closest == null ? null : closest.maxAbsErr(),
                        closest == null ? null : closest.maxRelErr(), closest == null ? null : closest.maxTolRatio(),
                        closest == null ? null : closest.name(), closest == null ? null : closest.worstSample(), null,
                        null);
            }
            ParamReport p = worst.get();
            Failure failure = report.failures().stream().filter(f -> p.name().equals(f.param())).findFirst()
                    .orElse(report.failures().isEmpty() ? null : report.failures().get(0));
            Integer sample = failure != null && failure.sample() != null ? failure.sample() : p.worstSample();
            return new RowOutcome(ConformanceVerdict.FAILED, kinds, p.maxAbsErr(), p.maxRelErr(), p.maxTolRatio(),
                    p.name(), sample, failure == null ? null : failure.kind(),
                    failure == null ? "parameter " + p.name() + " failed" : failure.message());
        }

        ConformanceRow toRow(String configuration, String reduction, long batchSize, double seconds) {
            return new ConformanceRow(configuration, reduction, batchSize, verdict, kinds, maxAbsErr, maxRelErr,
                    maxTolRatio, param, sample, kind, message, seconds);
        }
    }
}
