package dev.psg4j.cli;

import dev.psg4j.ModelExecutionException;
import dev.psg4j.check.Batch;
import dev.psg4j.check.Probes;
import dev.psg4j.model.Model;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.ProbeReport;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code psg4j probe}: is the model batch-independent and deterministic on this batch? */
@Command(name = "probe", mixinStandardHelpOptions = true, sortOptions = false,
        header = "Finds batch mixing, NaN/Inf and non-deterministic forwards in a model on a batch.",
        description = {"Probes a model on a batch: NaN/Inf in the inputs or the output, two forwards that disagree, and",
                "whether any sample's output depends on another sample (batch mixing: batch statistics, attention or",
                "sums across the batch, a reshape that folds the batch), for every sample and every pair, at",
                "2 log2(B) + 3 passes. It names which samples leak into which and the first submodule that mixes."},
        exitCodeListHeading = "%nExit status:%n",
        exitCodeList = {"0:batch-independent and deterministic", "1:batch mixing or a non-deterministic forward found",
                "2:bad usage or bad input"})
final class ProbeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelBatchOptions source;

    @Mixin
    ProbeSampleOptions probing;

    @Mixin
    DeviceOptions devices;

    @Option(names = "--json", paramLabel = "REPORT.json", description = "also write the findings as JSON")
    Path json;

    @Override
    public Integer call() {
        return Failures.guarded(spec, this::probe);
    }

    private int probe() {
        String device = devices.canonical();
        int probeSamples = probing.probeSamples();
        ReportFiles reports = ReportFiles.json(json);
        try (Model m = source.model(device);
             Batch batch = new Batch(source.inputs(), List.of(), source.batchDim, source.batchDim, device)) {
            ProbeReport report;
            try {
                report = Probes.report(m, batch, probeSamples);
            } catch (ModelExecutionException e) {
                throw source.explainDtype(m, batch.inputs(), e);
            }
            PrintWriter out = spec.commandLine().getOut();
            out.print(describe(report));
            return reports.write(spec, report.passed() ? Psg4jCli.PASSED : Psg4jCli.FAILED, report::writeJson,
                    "JSON report");
        }
    }

    private static String describe(ProbeReport report) {
        StringBuilder out = new StringBuilder();
        out.append(report.passed() ? "PASSED" : "FAILED").append(": B = ").append(report.batchSize()).append('\n');
        if (report.nonFiniteIn() != null) {
            out.append("  finite: NO (").append(report.nonFiniteIn().label()).append(" of samples ")
                    .append(report.nonFiniteSamples()).append(")\n");
        } else {
            out.append("  deterministic: ").append(report.deterministic() ? "yes" : "NO").append('\n');
        }
        if (report.batchIndependent() != null) {
            out.append("  batch-independent: ").append(report.batchIndependent() ? "yes" : "NO")
                    .append(" (every sample and pair; ").append(report.method().label().replace('_', ' '))
                    .append(", samples alone: ").append(report.aloneRoute().label().replace('_', ' ')).append(")\n");
            if (!report.batchIndependent()) {
                out.append("    affected samples: ").append(report.affectedSamples())
                        .append(report.dense() ? " (dense mixing)" : "").append('\n');
            }
            for (Map.Entry<Integer, List<Integer>> e : report.leaks().entrySet()) {
                out.append("    sample ").append(e.getKey()).append(" <- samples ").append(e.getValue()).append('\n');
            }
            if (!report.leaksComplete()) {
                out.append("    (sources named for ").append(report.leaks().size())
                        .append(" samples; --probe-samples names more)\n");
            }
            if (!report.differsAlone().isEmpty()) {
                out.append("    samples whose output changes when run alone: ").append(report.differsAlone()).append('\n');
            }
            if (report.mixingModule() != null) {
                out.append("  mixing starts in submodule: ").append(report.mixingModule()).append('\n');
            }
        }
        out.append(String.format(Locale.ROOT, "  cost: %s, %.1f ms%n", report.passes(), report.probeMs()));
        for (Diagnosis d : report.diagnoses()) {
            out.append("  * ").append(d.message()).append('\n');
        }
        return out.toString();
    }
}
