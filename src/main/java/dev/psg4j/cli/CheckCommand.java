package dev.psg4j.cli;

import dev.psg4j.BadInputException;
import dev.psg4j.ModelExecutionException;
import dev.psg4j.bridge.Natives;
import dev.psg4j.check.ClippedSumSampler;
import dev.psg4j.check.Clipping;
import dev.psg4j.check.ClippingMode;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.check.NormSampler;
import dev.psg4j.check.CheckMode;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Reduction;
import dev.psg4j.check.SketchPrecision;
import dev.psg4j.check.Threads;
import dev.psg4j.check.Tolerance;
import dev.psg4j.check.ToleranceRule;
import dev.psg4j.engine.Engines;
import dev.psg4j.engine.GradSamplers;
import dev.psg4j.engine.TensorContainer;
import dev.psg4j.engine.TensorFile;
import dev.psg4j.model.Model;
import dev.psg4j.report.CheckReport;

import org.bytedeco.pytorch.Tensor;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code psg4j check}: one model, one batch, the engine's or a file's per-sample gradients vs the reference. */
@Command(name = "check", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Checks per-sample gradients against the microbatch reference (each sample alone).",
                "Without --candidate the engine computes them; with it, they come from a file made elsewhere",
                "(Opacus, torch.func, your code) for one reduction."},
        exitCodeListHeading = "%nExit status:%n",
        exitCodeList = {"0:every check passed", "1:a mismatch or a violation was found",
                "2:bad usage or bad input"})
final class CheckCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelBatchOptions source;

    @Option(names = "--target", paramLabel = "Y.pt", description = "torch.save of the loss targets (mse, cross_entropy)")
    Path target;

    @Option(names = "--loss", paramLabel = "LOSS", defaultValue = "l1",
            description = "l1 (against zeros without a target), mse, cross_entropy (class indices) or sum; default ${DEFAULT-VALUE}")
    String loss;

    @Option(names = "--reduction", paramLabel = "R", defaultValue = "both",
            description = "sum, mean or both; default ${DEFAULT-VALUE}")
    String reduction;

    @Option(names = "--target-batch-dim", paramLabel = "N", description = "the batch dimension of the targets; default --batch-dim")
    Integer targetBatchDim;

    @Mixin
    EngineOptions engines;

    @Mixin
    ProbeSampleOptions probing;

    @Option(names = "--no-probes", negatable = false,
            description = "skip the determinism and batch-independence probes run before comparing")
    boolean noProbes;

    @Option(names = "--mode", paramLabel = "MODE", defaultValue = "exact",
            description = "exact (every element of every sample against the reference) or sketch (random projections, "
                    + "one batched backward each; parameters not at rounding level decided exactly)")
    String mode;

    @Option(names = "--projections", paramLabel = "K", description = "sketch mode's random projections; default 2")
    Integer projections;

    @Option(names = "--seed", paramLabel = "S", description = "sketch mode's weights seed (the report records the one used)")
    Long seed;

    @Option(names = "--sketch-precision", paramLabel = "P",
            description = "sketch mode's projections for a float model: double (default; exact mode's verdict) or "
                    + "float-first (float, double only for what float leaves undecided: cheaper; an element M "
                    + "tolerances off passes with probability up to about M^-K)")
    String sketchPrecision;

    @Option(names = "--candidate", paramLabel = "GRADS.pt",
            description = "torch.save of a dict {parameter name: Tensor[B, *shape]} for the one --reduction given")
    Path candidate;

    // ---- norms-only and clipped-sum candidates ----
    @Option(names = "--candidate-norms", paramLabel = "NORMS.pt",
            description = "torch.save of per-sample gradient norms for the one --reduction: a tensor [B] (each "
                    + "sample's whole-gradient norm) or a dict {parameter name: Tensor[B]} (e.g. Opacus ghost clipping's)")
    Path candidateNorms;

    @Option(names = "--candidate-clipped-sum", paramLabel = "SUM.pt",
            description = "torch.save of a DP optimizer's pre-noise clipped sum {parameter name: Tensor[*shape]} "
                    + "(Opacus's p.summed_grad) for the one --reduction; needs --max-grad-norm")
    Path candidateClippedSum;

    @Option(names = "--max-grad-norm", paramLabel = "C",
            description = "the clipping threshold C of --candidate-clipped-sum; per-layer: one C, split as C/sqrt(P) "
                    + "over the P trainable parameters as Opacus's examples do, or C1,C2,... one per parameter "
                    + "(named_parameters() order, a tied one once)")
    String maxGradNorm;

    @Option(names = "--clipping", paramLabel = "MODE",
            description = "how --candidate-clipped-sum was clipped: flat (one factor per sample from its whole "
                    + "gradient's norm; the default) or per-layer (one per parameter)")
    String clippingMode;
    // ---- end of the norms options ----

    @Option(names = "--atol", paramLabel = "A", description = "absolute tolerance; default 1e-5")
    Double atol;

    @Option(names = "--rtol", paramLabel = "R", description = "relative tolerance; default 1e-4")
    Double rtol;

    @Option(names = "--tolerance", paramLabel = "RULE",
            description = "how per-sample gradients are compared: rounding (the default: atol + rtol·|ref| widened by 4 "
                    + "times the reference's own float rounding level, measured on a few samples of the batch) or "
                    + "allclose (exactly |cand - ref| <= atol + rtol·|ref|, as Opacus)")
    String toleranceRule;

    @Option(names = "--threads", paramLabel = "N", description = "threads: the reference's sample workers (each on one intra-op thread; the same "
            + "verdicts at any N) and the probes' and engine's intra-op threads; default LibTorch's count")
    Integer threads;

    @Mixin
    DeviceOptions devices;

    @Option(names = "--cuda-graphs", negatable = false,
            description = "on CUDA, capture the reference's one-sample forward + backward once as a CUDA graph and "
                    + "replay it per sample (falls back to streams where capture fails; the report's reference_route says)")
    boolean cudaGraphs;

    /** The canonical device of this run, set first thing in {@link #check()}. */
    private String device;

    /** The --json and --html files, checked with the options before any work. */
    private ReportFiles reports;

    @Option(names = "--json", paramLabel = "REPORT.json", description = "also write the report as JSON")
    Path json;

    @Option(names = "--html", paramLabel = "REPORT.html",
            description = "also write a self-contained HTML report (tables, per-sample heat map and charts)")
    Path html;

    @Override
    public Integer call() {
        return Failures.guarded(spec, this::check);
    }

    private int check() {
        device = devices.canonical();  // first: a bad --device is the one thing to fix
        List<Reduction> reductions = reductions();
        Loss lossFn = Loss.named(loss);
        checkOptions(reductions, lossFn);

        try (GradSamplers registry = engines.registry()) {
            GradSampler engine = candidate == null ? engines.sampler(registry) : null;
            return check(reductions, lossFn, engine);
        }
    }

    private int check(List<Reduction> reductions, Loss lossFn, GradSampler engine) {
        try (Model m = source.model(device)) {
            List<Tensor> inputs = source.inputs(device);
            List<Tensor> targets = target == null ? List.of()
                    : DeviceOptions.onDevice(ModelBatchOptions.batchTensors(target, "--target"), device);
            GradSampler sampler = candidate == null ? engine
                    : Engines.precomputed(candidate.getFileName().toString(), reductions.get(0), candidateGrads());
            PerSampleCheck.Builder builder = PerSampleCheck.builder().model(m).inputs(inputs).targets(targets)
                    .loss(lossFn).reductions(reductions.toArray(Reduction[]::new)).batchDim(source.batchDim)
                    .tolerance(atol == null ? Tolerance.DEFAULT.atol() : atol, rtol == null ? Tolerance.DEFAULT.rtol() : rtol)
                    .device(device).cudaGraphs(cudaGraphs);
            if (toleranceRule != null) {
                builder.toleranceRule(ToleranceRule.named(toleranceRule));
            }
            if (targetBatchDim != null) {
                builder.targetBatchDim(targetBatchDim);
            }
            if (threads != null) {
                builder.threads(threads);
            }
            builder.probes(!noProbes).probeSamples(probing.probeSamples()).mode(CheckMode.named(mode));
            if (projections != null) {
                builder.projections(projections);
            }
            if (seed != null) {
                builder.seed(seed);
            }
            if (sketchPrecision != null) {
                builder.sketchPrecision(SketchPrecision.named(sketchPrecision));
            }
            CheckReport report;
            try (PerSampleCheck check = build(builder, inputs, targets)) {
                report = otherCandidate() ? runOtherCandidate(check, reductions.get(0)) : check.run(sampler);
            } catch (ModelExecutionException e) {
                throw source.explainDtype(m, inputs, e);
            }
            PrintWriter out = spec.commandLine().getOut();
            out.print(report.summary());
            out.print(report.table());
            return reports.write(spec, report.passed() ? Psg4jCli.PASSED : Psg4jCli.FAILED, report::writeJson,
                    "JSON report", report::writeHtml, "HTML report");
        }
    }

    /** The check; a batch whose targets do not fit the batch dimension is refused in the options' names. */
    private PerSampleCheck build(PerSampleCheck.Builder builder, List<Tensor> inputs, List<Tensor> targets) {
        try {
            return builder.build();
        } catch (BadInputException e) {
            throw source.explainBatchDims(inputs, targets, targetBatchDim, e);
        }
    }

    private List<Reduction> reductions() {
        return ReductionOption.parse(reduction);
    }

    private void checkOptions(List<Reduction> reductions, Loss lossFn) {
        if (CheckMode.named(mode) == CheckMode.SKETCH && noProbes) {
            throw new BadInputException("--mode sketch needs the probes (a sketch is valid only on a batch-independent, "
                    + "deterministic model): drop --no-probes or use --mode exact");
        }
        boolean sketch = CheckMode.named(mode) == CheckMode.SKETCH;
        for (String option : List.of("--projections", "--seed", "--sketch-precision")) {
            Failures.requireApplies(spec, option, sketch, "--mode sketch", "add --mode sketch, or drop " + option);
        }
        if (projections != null) {
            PerSampleCheck.builder().projections(projections);
        }
        if (sketchPrecision != null) {
            SketchPrecision.named(sketchPrecision);
        }
        Failures.requireApplies(spec, "--probe-samples", !noProbes, "the probes",
                "--no-probes skips them; drop one of the two");
        probing.probeSamples();
        Failures.requireApplies(spec, "--cuda-graphs", device.startsWith("cuda"), "--device cuda",
                "the reference runs on the CPU here; add --device cuda, or drop --cuda-graphs");
        Failures.requireApplies(spec, "--target-batch-dim", target != null, "--target",
                "give the targets with --target Y.pt, or drop --target-batch-dim");
        engines.requireApplicable(spec, candidate != null ? "--candidate" : candidateNorms != null ? "--candidate-norms"
                : candidateClippedSum != null ? "--candidate-clipped-sum" : null);
        checkOtherCandidateOptions(reductions);
        if (candidate != null && reductions.size() != 1) {
            throw new BadInputException("--candidate holds gradients for one reduction: say which with "
                    + "--reduction sum or --reduction mean");
        }
        if (threads != null) {
            Threads.checked(threads, "--threads");
        }
        reports = ReportFiles.of(json, html);
        if (target == null && (lossFn == Loss.MSE || lossFn == Loss.CROSS_ENTROPY)) {
            throw new BadInputException("loss " + lossFn.name() + " needs targets: give --target Y.pt "
                    + "(or use --loss l1 or sum, which need none)");
        }
    }

    // ---- norms-only and clipped-sum candidates ----
    private boolean otherCandidate() {
        return candidateNorms != null || candidateClippedSum != null;
    }

    private void checkOtherCandidateOptions(List<Reduction> reductions) {
        long given = java.util.stream.Stream.of(candidate, candidateNorms, candidateClippedSum)
                .filter(java.util.Objects::nonNull).count();
        if (given > 1) {
            throw new BadInputException("give one of --candidate, --candidate-norms and --candidate-clipped-sum: a "
                    + "check compares one kind of candidate");
        }
        if (candidateClippedSum == null && (maxGradNorm != null || clippingMode != null)) {
            throw new BadInputException((maxGradNorm != null ? "--max-grad-norm" : "--clipping") + " applies to "
                    + "--candidate-clipped-sum only: give the clipped sum, or drop the option");
        }
        if (!otherCandidate()) {
            return;
        }
        String option = candidateNorms != null ? "--candidate-norms" : "--candidate-clipped-sum";
        if (toleranceRule != null) {
            throw new BadInputException("--tolerance applies to per-sample gradients; " + option + " has its own "
                    + "criterion (see the README): drop --tolerance");
        }
        if (reductions.size() != 1) {
            throw new BadInputException(option + " holds values for one reduction: say which with --reduction sum or "
                    + "--reduction mean");
        }
        if (CheckMode.named(mode) != CheckMode.EXACT) {
            throw new BadInputException(option + " is always checked exactly (a sketch applies to per-sample "
                    + "gradients): drop --mode sketch");
        }
        if (candidateClippedSum != null) {
            clipping();
        }
    }

    private Clipping clipping() {
        if (maxGradNorm == null) {
            throw new BadInputException("--candidate-clipped-sum needs --max-grad-norm C: the max_grad_norm the DP "
                    + "optimizer clipped with");
        }
        List<Double> thresholds = CommaLists.of("--max-grad-norm", maxGradNorm, "a number C > 0, or C1,C2,... for "
                + "per-layer clipping", entry -> {
                    try {
                        return Double.parseDouble(entry);
                    } catch (NumberFormatException e) {
                        throw new BadInputException("--max-grad-norm: '" + entry + "' is not a number; give C > 0 "
                                + "(e.g. 1.0), or C1,C2,... one per parameter for per-layer clipping");
                    }
                });
        ClippingMode clip = clippingMode == null ? ClippingMode.FLAT : ClippingMode.named(clippingMode);
        if (clip == ClippingMode.FLAT && thresholds.size() > 1) {
            throw new BadInputException("--max-grad-norm has " + thresholds.size() + " thresholds but flat clipping "
                    + "takes one C: give --clipping per-layer for one threshold per parameter");
        }
        return new Clipping(clip, thresholds);
    }

    private CheckReport runOtherCandidate(PerSampleCheck check, Reduction reduction) {
        if (candidateNorms != null) {
            TensorFile norms = DeviceOptions.read(candidateNorms, device);
            if (norms.container() != TensorContainer.TENSOR && norms.container() != TensorContainer.DICT) {
                Natives.closeAll(norms.entries());
                throw new BadInputException("--candidate-norms " + candidateNorms + " holds " + norms.describe()
                        + ": save a tensor [B] (torch.save(norms, path)) or a dict {parameter name: Tensor[B]}");
            }
            try {
                return check.runNorms(NormSampler.precomputed(candidateNorms.getFileName().toString(), reduction,
                        norms.entries()));
            } finally {
                Natives.closeAll(norms.entries());
            }
        }
        Clipping clip = clipping();
        TensorFile sum = DeviceOptions.read(candidateClippedSum, device);
        try {
            if (sum.container() != TensorContainer.DICT) {
                throw new BadInputException("--candidate-clipped-sum " + candidateClippedSum + " holds " + sum.describe()
                        + ", not a dict: save {parameter name: Tensor[*shape]}, e.g. {n: p.summed_grad for n, p in "
                        + "model.named_parameters()}");
            }
            return check.runClippedSum(ClippedSumSampler.precomputed(candidateClippedSum.getFileName().toString(),
                    reduction, sum.entries()), clip);
        } finally {
            Natives.closeAll(sum.entries());
        }
    }
    // ---- end of the norms block ----

    private Map<String, Tensor> candidateGrads() {
        TensorFile grads = DeviceOptions.read(candidate, device);
        if (grads.container() != TensorContainer.DICT) {
            throw new BadInputException("--candidate " + candidate + " holds " + grads.describe() + ", not a dict: save "
                    + "a dict {name: tensor}, {parameter name: Tensor[B, *shape]}, with torch.save (e.g. "
                    + "{n: p.grad_sample for n, p in model.named_parameters()})");
        }
        return grads.entries();
    }
}
