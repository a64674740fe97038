package dev.psg4j.cli;

import dev.psg4j.BadInputException;
import dev.psg4j.check.GradSampler;
import dev.psg4j.engine.GradSamplers;

import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code --engine NAME [--plugin JAR]... [--engine-option K=V]...}, shared by {@code check},
 * {@code bench} and {@code conform}: one lookup in {@link GradSamplers}, built-ins and plug-ins alike.
 */
final class EngineOptions {
    static final String DEFAULT_ENGINE = "vmap";

    @Option(names = "--engine", paramLabel = "NAME", defaultValue = DEFAULT_ENGINE,
            description = "the grad sampler: vmap (vectorized, native), microbatch (the reference itself) or a "
                    + "plug-in's name (see 'psg4j engines'); default ${DEFAULT-VALUE}")
    String engine;

    @Option(names = "--plugin", paramLabel = "JAR",
            description = "a jar registering grad samplers (META-INF/services/dev.psg4j.engine.GradSamplerProvider); repeatable")
    List<Path> plugins = new ArrayList<>();

    @Option(names = "--engine-option", paramLabel = "NAME=VALUE",
            description = "an option of the engine (its names: 'psg4j engines'); repeatable")
    Map<String, String> engineOptions = new LinkedHashMap<>();

    @Option(names = "--chunk-size", paramLabel = "N",
            description = "vmap: at most N samples per vectorized pass, to bound memory; 0 (default): the whole batch")
    Long chunkSize;

    @Option(names = "--randomness", paramLabel = "MODE",
            description = "vmap: what random ops do: error (default), different (per sample) or same")
    String randomness;

    /** The options here that choose or tune the engine, as given on the command line. */
    static final List<String> NAMES = List.of("--engine", "--plugin", "--engine-option", "--chunk-size", "--randomness");

    /**
     * Refuses every engine option given where no engine runs ({@code gradientsFrom} says what
     * gives the gradients instead, e.g. "--candidate"), and a --plugin without --engine, whose
     * jar's sampler would go unused.
     */
    void requireApplicable(CommandSpec spec, String gradientsFrom) {
        for (String option : NAMES) {
            Failures.requireApplies(spec, option, gradientsFrom == null, "a check that runs an engine",
                    "the gradients come from " + gradientsFrom + ", so no engine runs; drop " + option);
        }
        if (!plugins.isEmpty() && !spec.commandLine().getParseResult().hasMatchedOption("--engine")) {
            throw new BadInputException("--plugin given without --engine: name the plug-in's grad sampler with "
                    + "--engine NAME ('psg4j engines --plugin JAR' lists them)");
        }
    }

    /** The registry of built-ins and the plug-ins given; the caller closes it. */
    GradSamplers registry() {
        return GradSamplers.withPlugins(plugins);
    }

    /** The sampler named by {@code --engine}, from {@code registry}, with its options. */
    GradSampler sampler(GradSamplers registry) {
        return sampler(registry, engine);
    }

    /** The sampler named {@code name}, from {@code registry}, with the options given. */
    GradSampler sampler(GradSamplers registry, String name) {
        return registry.sampler(name, options(name));
    }

    /** {@code --engine-option}s plus the vmap shorthands ({@code --chunk-size}, {@code --randomness}). */
    Map<String, String> options(String name) {
        Map<String, String> options = new LinkedHashMap<>(engineOptions);
        shorthand(options, name, "--chunk-size", "chunk-size", chunkSize == null ? null : chunkSize.toString());
        shorthand(options, name, "--randomness", "randomness", randomness);
        return options;
    }

    private static void shorthand(Map<String, String> options, String name, String flag, String option, String value) {
        if (value == null) {
            return;
        }
        if (!DEFAULT_ENGINE.equals(name)) {
            throw new BadInputException(flag + " is an option of the vmap engine, not of " + name
                    + ": drop it, or give the engine's own options with --engine-option NAME=VALUE");
        }
        options.put(option, value);
    }
}
