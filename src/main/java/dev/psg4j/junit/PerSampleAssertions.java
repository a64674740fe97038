package dev.psg4j.junit;

import dev.psg4j.check.GradSampler;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.report.CheckReport;

/**
 * Test assertions over check reports; a failure shows the summary, the failures and the verdict
 * table. With opentest4j on the class path (JUnit 5 brings it; psg4j declares it optional) the
 * failure is its {@code AssertionFailedError}, which IDEs render as expected/actual; without it, a
 * plain {@link AssertionError} (TestNG, plain Java).
 */
public final class PerSampleAssertions {
    private static final boolean OPENTEST4J = present("org.opentest4j.AssertionFailedError");

    private PerSampleAssertions() {
    }

    /** Fails unless every reduction and parameter of {@code report} passed. */
    public static void assertCorrect(CheckReport report) {
        if (!report.passed()) {
            String message = "per-sample gradients of engine '" + report.engine()
                    + "' do not match the microbatch reference\n" + report.summary() + report.table();
            throw OPENTEST4J ? Opentest4j.failure(message) : new AssertionError(message);
        }
    }

    /** Runs {@code sampler} in {@code check} and fails unless it passes. */
    public static void assertCorrect(PerSampleCheck check, GradSampler sampler) {
        assertCorrect(check.run(sampler));
    }

    private static boolean present(String className) {
        try {
            Class.forName(className, false, PerSampleAssertions.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException | LinkageError e) {
            return false;
        }
    }

    /** Loaded only when opentest4j is there. */
    private static final class Opentest4j {
        static AssertionError failure(String message) {
            return new org.opentest4j.AssertionFailedError(message, "passed", "failed");
        }
    }
}
