package dev.psg4j.cli;

import dev.psg4j.cli.demo.Demo;
import dev.psg4j.report.CheckReport;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code psg4j demo}: the built-in examples of {@link Demo}, one verdict line each. */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"Runs built-in examples, some deliberately broken.",
                "Correct grad samplers pass, broken ones fail, and the transpose trap shows a batch-first",
                "sampler silently wrong on a time-first layer; then psg4j conform shows three broken hooks-style samplers",
                "failing exactly their rows of the layer matrix. Exits 0 when every example gets the verdict it should."})
final class DemoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        return Failures.guarded(spec, this::demo);
    }

    private int demo() {
        List<Demo.Outcome> outcomes = Demo.run();
        PrintWriter out = spec.commandLine().getOut();
        int width = outcomes.stream().mapToInt(o -> o.report().engine().length()).max().orElse(10);
        int modelWidth = outcomes.stream().mapToInt(o -> o.model().length()).max().orElse(10);
        for (Demo.Outcome o : outcomes) {
            CheckReport r = o.report();
            StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%s  %-" + width + "s  %-" + modelWidth
                    + "s  %s", r.passed() ? "PASS" : "FAIL", r.engine(), o.model(),
                    o.asExpected() ? "(as expected)" : "(UNEXPECTED: should " + (o.expectPass() ? "pass" : "fail") + ")"));
            if (!r.failures().isEmpty()) {
                line.append("  ").append(r.failures().get(0).message());
            } else if (!r.diagnoses().isEmpty()) {
                line.append("  ").append(r.diagnoses().get(0).message());
            }
            out.println(line);
        }
        for (Demo.Outcome o : outcomes) {
            if (!o.report().passed()) {
                out.println();
                out.println("== " + o.report().engine() + " on " + o.model());
                out.print(o.report().reductions().isEmpty() ? o.report().summary() : o.report().table());
                if (!o.report().reductions().isEmpty()) {
                    o.report().diagnoses().forEach(d -> out.println("  * " + d.message()));  // why values are wrong
                }
            }
        }
        List<Demo.ConformanceOutcome> conformance = Demo.conformance();
        out.println();
        out.println("== psg4j conform on the deliberately broken hooks-style samplers (B = " + Demo.CONFORMANCE_B
                + ", reduction sum):");
        for (Demo.ConformanceOutcome c : conformance) {
            var t = c.report().totals();
            out.println(String.format(Locale.ROOT, "%-26s %3d passed, %3d failed, %3d skipped  %s  (%s)", c.demo().name(),
                    t.passed(), t.failed() + t.error(), t.skipped(),
                    c.asExpected() ? "(as expected)" : "(UNEXPECTED: should fail exactly " + c.expectedFailures() + ")",
                    c.demo().description()));
            for (String failed : c.failed()) {
                out.println("    failed: " + failed);
            }
        }
        long unexpected = outcomes.stream().filter(o -> !o.asExpected()).count()
                + conformance.stream().filter(c -> !c.asExpected()).count();
        long passed = outcomes.stream().filter(o -> o.report().passed()).count();
        out.println();
        out.println(unexpected == 0
                ? "demo: all " + outcomes.size() + " examples got the expected verdict (" + passed + " pass, "
                        + (outcomes.size() - passed) + " fail as they should), and the " + conformance.size()
                        + " broken samplers failed exactly their rows"
                : "demo: " + unexpected + " of " + (outcomes.size() + conformance.size())
                        + " examples did NOT get the expected verdict");
        out.flush();
        return unexpected == 0 ? Psg4jCli.PASSED : Psg4jCli.FAILED;
    }
}
