package com.example.hookslinear;

import dev.psg4j.check.GradSampler;
import dev.psg4j.engine.GradSamplerProvider;
import dev.psg4j.engine.SamplerOptions;

/** Registers {@link HooksLinearSampler} as {@code --engine example-hooks-linear}. */
public final class HooksLinearProvider implements GradSamplerProvider {
    @Override
    public String name() {
        return "example-hooks-linear";
    }

    @Override
    public String description() {
        return "an example plug-in: Opacus-style Linear sampler from psg4j's layer capture (batch-first or time-first data)";
    }

    @Override
    public GradSampler create(SamplerOptions options) {
        return new HooksLinearSampler();
    }
}
