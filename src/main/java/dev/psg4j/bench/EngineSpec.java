package dev.psg4j.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.psg4j.BadInputException;
import dev.psg4j.check.GradSampler;
import dev.psg4j.engine.GradSamplers;

import java.io.File;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The grad sampler {@code psg4j bench --engine NAME [--plugin JAR]... [--engine-option K=V]...}
 * times as the {@link BenchMethod#ENGINE} method: a built-in or plug-in name, its options and the
 * plug-in jars. It travels to forked benchmark JVMs as JMH parameters ({@link #pluginsParam()},
 * {@link #optionsParam()}), where {@link #open()} builds the same registry.
 *
 * @param name    the engine's registered name
 * @param options its options, unparsed (the provider parses them)
 * @param plugins the plug-in jars to register, absolute
 */
public record EngineSpec(String name, Map<String, String> options, List<Path> plugins) {
    private static final ObjectMapper JSON = new ObjectMapper();

    public EngineSpec {
        BadInputException.requireNonNull(name, "name", "an engine name, e.g. vmap");
        options = Map.copyOf(options == null ? Map.of() : new LinkedHashMap<>(options));
        plugins = (plugins == null ? List.<Path>of() : plugins).stream().map(p -> p.toAbsolutePath().normalize()).toList();
    }

    /** The registry of built-ins and {@link #plugins}; the caller closes it when done with its samplers. */
    public GradSamplers open() {
        return GradSamplers.withPlugins(plugins);
    }

    /** The sampler from a registry {@link #open()} made. */
    public GradSampler sampler(GradSamplers registry) {
        return registry.sampler(name, options);
    }

    /** Checks that the plug-ins load and the engine exists and starts with these options (a BadInputException else). */
    public void requireValid() {
        try (GradSamplers registry = open()) {
            sampler(registry);
        }
    }

    /** The plug-in jars as one JMH parameter: absolute paths joined by the path separator; "-" for none. */
    String pluginsParam() {
        return plugins.isEmpty() ? SuiteBenchmark.NONE
                : String.join(File.pathSeparator, plugins.stream().map(Path::toString).toList());
    }

    /** The options as one JMH parameter (a JSON object). */
    String optionsParam() {
        try {
            return JSON.writeValueAsString(options);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a map of strings always serializes", e);
        }
    }

    /** The spec {@link SuiteBenchmark} was given as parameters. */
    static EngineSpec ofParams(String name, String plugins, String options) {
        List<Path> jars = SuiteBenchmark.NONE.equals(plugins) ? List.of()
                : Arrays.stream(plugins.split(File.pathSeparator)).map(Path::of).toList();
        try {
            return new EngineSpec(name, JSON.readValue(options, new TypeReference<Map<String, String>>() { }), jars);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("bad engine options parameter " + options, e);
        }
    }
}
