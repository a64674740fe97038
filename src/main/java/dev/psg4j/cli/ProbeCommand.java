package dev.psg4j.cli;

import dev.psg4j.BadInputException;
import dev.psg4j.check.Batch;
import dev.psg4j.check.Probes;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
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
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

/** {@code psg4j probe}: is the model batch-independent and deterministic on this batch? */
@Command(name = "probe", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Probes a model on a batch: does any sample's output depend on other samples (batch mixing:",
                "batch statistics, attention or sums across the batch, a reshape that folds the batch), and do two",
                "forwards agree? For a chain of submodules it names the first one that mixes."},
        exitCodeListHeading = "%nExit status:%n",
        exitCodeList = {"0:batch-independent and deterministic", "1:batch mixing or a non-deterministic forward found",
                "2:bad usage or bad input"})
final class ProbeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelBatchOptions source;

    @Option(names = "--probe-samples", paramLabel = "K", defaultValue = "3",
            description = "how many samples to probe (the first, the last and ones between); default ${DEFAULT-VALUE}")
    int probeSamples;

    @Option(names = "--json", paramLabel = "REPORT.json", description = "also write the findings as JSON")
    Path json;

    @Override
    public Integer call() {
        return Failures.guarded(spec, this::probe);
    }

    private int probe() {
        if (probeSamples < 1) {
            throw new BadInputException("--probe-samples must be at least 1, got " + probeSamples);
        }
        Failures.requireFolderOf(json, "--json");
        try (Model m = Models.torchScript(source.model);
             Batch batch = new Batch(source.inputs(), List.of(), source.batchDim, source.batchDim)) {
            ProbeReport report = Probes.report(m, batch, probeSamples);
            PrintWriter out = spec.commandLine().getOut();
            out.print(describe(report));
            if (json != null) {
                Failures.writing(json, "--json", () -> report.writeJson(json));
                out.println("JSON report written to " + json);
            }
            out.flush();
            return report.passed() ? Psg4jCli.PASSED : Psg4jCli.FAILED;
        }
    }

    private static String describe(ProbeReport report) {
        StringBuilder out = new StringBuilder();
        out.append(report.passed() ? "PASSED" : "FAILED").append(": B = ").append(report.batchSize()).append('\n');
        out.append("  deterministic: ").append(report.deterministic() ? "yes" : "NO").append('\n');
        if (report.batchIndependent() != null) {
            out.append("  batch-independent: ").append(report.batchIndependent() ? "yes" : "NO")
                    .append(" (").append(report.method().replace('_', ' ')).append(", probed samples ")
                    .append(report.leaks().keySet().stream().map(String::valueOf).collect(Collectors.joining(", ")))
                    .append(")\n");
            for (Map.Entry<Integer, List<Integer>> e : report.leaks().entrySet()) {
                if (!e.getValue().isEmpty()) {
                    out.append("    sample ").append(e.getKey()).append(" <- samples ").append(e.getValue()).append('\n');
                }
            }
            if (!report.differsAlone().isEmpty()) {
                out.append("    samples whose output changes when run alone: ").append(report.differsAlone()).append('\n');
            }
            if (report.mixingModule() != null) {
                out.append("  mixing starts in submodule: ").append(report.mixingModule()).append('\n');
            }
        }
        for (Diagnosis d : report.diagnoses()) {
            out.append("  * ").append(d.message()).append('\n');
        }
        return out.toString();
    }
}
