package dev.psg4j.cli;

import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Reduction;
import dev.psg4j.conform.Conformance;
import dev.psg4j.conform.TorchScriptMatrix;
import dev.psg4j.engine.GradSamplers;
import dev.psg4j.report.ConformanceReport;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code psg4j conform}: a grad sampler over psg4j's layer matrix, one row per configuration × B × reduction. */
@Command(name = "conform", mixinStandardHelpOptions = true, sortOptions = false,
        header = "Checks a grad sampler on psg4j's layer matrix against the microbatch reference.",
        description = {"Runs a grad sampler over psg4j's layer matrix (Linear, Conv, ConvTranspose, Embedding, norms,",
                "recurrent layers, attention, Sequentials, two inputs, cross-entropy, a module used twice, batch of 1)",
                "at a few batch sizes and both reductions, each row checked against the microbatch reference.",
                "Rows with a layer kind the sampler does not claim (supportsLayer) are skipped, not passed."},
        exitCodeListHeading = "%nExit status:%n",
        exitCodeList = {"0:every row that ran passed", "1:a row failed or errored, or no row ran",
                "2:bad usage or bad input"})
final class ConformCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    EngineOptions engines;

    @Mixin
    DeviceOptions devices;

    @Option(names = "--batch", paramLabel = "B,B...", defaultValue = "3,8",
            description = "the batch sizes each configuration runs at (the batch-of-1 ones run at 1); default ${DEFAULT-VALUE}")
    String batch;

    @Option(names = "--reduction", paramLabel = "R", defaultValue = "both",
            description = "sum, mean or both; default ${DEFAULT-VALUE}")
    String reduction;

    @Option(names = "--only", paramLabel = "REGEX",
            description = "run only the configurations whose name this regular expression finds (e.g. 'Conv2d|Linear')")
    String only;

    @Option(names = "--torchscript", paramLabel = "DIR",
            description = "also run a folder of TorchScript configurations (manifest.json and one folder per entry, "
                    + "as psg4j's TorchScript layer matrix)")
    Path torchScript;

    @Option(names = "--quiet", negatable = false, description = "print the summary and the failed rows, not the whole table")
    boolean quiet;

    @Option(names = "--json", paramLabel = "REPORT.json", description = "also write the report as JSON")
    Path json;

    @Option(names = "--html", paramLabel = "REPORT.html", description = "also write a self-contained HTML page")
    Path html;

    @Override
    public Integer call() {
        return Failures.guarded(spec, this::conform);
    }

    private int conform() {
        String device = devices.canonical();
        List<Long> sizes = CommaLists.of("--batch", batch, "batch sizes such as 3,8",
                entry -> CommaLists.positiveLong("--batch", entry));
        ReportFiles reports = ReportFiles.of(json, html);
        engines.requireApplicable(spec, null);
        try (GradSamplers registry = engines.registry()) {
            GradSampler sampler = engines.sampler(registry);
            Conformance run = Conformance.of(sampler).batchSizes(sizes.stream().mapToLong(Long::longValue).toArray())
                    .reductions(reductions()).device(device);
            if (torchScript != null) {
                run.add(TorchScriptMatrix.load(torchScript));
            }
            if (only != null) {
                run.only(only);
            }
            run.selected();  // a --only that matches nothing is bad input, before anything runs
            ConformanceReport report = run.run();
            PrintWriter out = spec.commandLine().getOut();
            if (!quiet) {
                out.print(report.table());
            }
            out.print(report.summary());
            return reports.write(spec, report.passed() ? Psg4jCli.PASSED : Psg4jCli.FAILED, report::writeJson,
                    "JSON report", report::writeHtml, "HTML report");
        }
    }

    private Reduction[] reductions() {
        return ReductionOption.parse(reduction).toArray(Reduction[]::new);
    }
}
