package dev.psg4j.cli;

import dev.psg4j.check.Probes;

import picocli.CommandLine.Option;

/** {@code --probe-samples}, shared by the commands that probe a model ({@code probe}, {@code check}). */
final class ProbeSampleOptions {
    @Option(names = "--probe-samples", paramLabel = "K", defaultValue = "" + Probes.DEFAULT_PROBE_SAMPLES,
            description = "the probes cover every sample and pair whatever K is; K bounds the flagged samples whose"
                    + " sources the report names (one backward each), 1 to " + Probes.MAX_PROBE_SAMPLES
                    + "; default ${DEFAULT-VALUE}")
    int probeSamples;

    /** The value, checked before any native code runs. */
    int probeSamples() {
        return Probes.requireProbeSamples(probeSamples, "--probe-samples");
    }
}
