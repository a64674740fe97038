package dev.psg4j.engine;

import dev.psg4j.check.GradSampler;

import java.util.Map;

/** Registers {@link Engines#vmap()} as {@code --engine vmap}. */
public final class VmapEngineProvider implements GradSamplerProvider {
    static final String CHUNK_SIZE = "chunk-size";
    static final String RANDOMNESS = "randomness";

    @Override
    public String name() {
        return "vmap";
    }

    @Override
    public String description() {
        return "psg4j's vmap(grad) engine: the whole batch in one vectorized native pass (per-layer rules where they apply)";
    }

    @Override
    public Map<String, String> options() {
        return Map.of(CHUNK_SIZE, "at most N samples per vectorized pass, to bound memory; 0 (default): the whole batch",
                RANDOMNESS, "what random ops do: error (default), different (per sample) or same");
    }

    @Override
    public GradSampler create(SamplerOptions options) {
        // The engine checks the range itself, with its own message.
        return Engines.vmap().chunkSize(options.integer(CHUNK_SIZE, 0, Long.MIN_VALUE, Long.MAX_VALUE))
                .randomness(Randomness.named(options.string(RANDOMNESS, "error")));
    }
}
