package dev.psg4j.engine;

import dev.psg4j.check.GradSampler;

/** Registers {@link Engines#microbatch()} as {@code --engine microbatch}. */
public final class MicrobatchEngineProvider implements GradSamplerProvider {
    @Override
    public String name() {
        return "microbatch";
    }

    @Override
    public String description() {
        return "the reference itself: every sample alone in a batch, natively, spread over psg4j's sample workers";
    }

    @Override
    public GradSampler create(SamplerOptions options) {
        return Engines.microbatch();
    }
}
