package dev.psg4j.check;

import dev.psg4j.report.CheckReport;

import org.opentest4j.AssertionFailedError;

/** JUnit 5 assertions over check reports; failures show the verdict table and the failures. */
public final class PerSampleAssertions {
    private PerSampleAssertions() {
    }

    /** Fails unless every reduction and parameter of {@code report} passed. */
    public static void assertCorrect(CheckReport report) {
        if (!report.passed()) {
            throw new AssertionFailedError("per-sample gradients of engine '" + report.engine()
                    + "' do not match the microbatch reference\n" + report.summary() + report.table(),
                    "passed", "failed");
        }
    }

    /** Runs {@code sampler} in {@code check} and fails unless it passes. */
    public static void assertCorrect(PerSampleCheck check, GradSampler sampler) {
        assertCorrect(check.run(sampler));
    }
}
