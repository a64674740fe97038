package dev.psg4j.cli;

import dev.psg4j.engine.GradSamplers;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

/** {@code psg4j engines}: the grad samplers {@code --engine} takes, built-in and from {@code --plugin} jars. */
@Command(name = "engines", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Lists the grad samplers --engine takes: psg4j's own and those of the --plugin jars given.",
        exitCodeListHeading = "%nExit status:%n",
        exitCodeList = {"0:listed", "2:bad usage or a broken plug-in"})
final class EnginesCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    EngineOptions engines;

    @Override
    public Integer call() {
        return Failures.guarded(spec, () -> {
            PrintWriter out = spec.commandLine().getOut();
            try (GradSamplers registry = engines.registry()) {
                for (GradSamplers.Registered r : registry.registered()) {
                    out.println(r.name() + "  (" + r.origin() + ")  " + r.provider().description());
                    for (Map.Entry<String, String> o : new TreeMap<>(r.provider().options()).entrySet()) {
                        out.println("    --engine-option " + o.getKey() + "=...  " + o.getValue());
                    }
                }
            }
            out.flush();
            return Psg4jCli.PASSED;
        });
    }
}
