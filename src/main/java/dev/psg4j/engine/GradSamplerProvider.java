package dev.psg4j.engine;

import dev.psg4j.check.GradSampler;

import java.util.Map;

/**
 * A grad sampler that psg4j finds by name: {@code psg4j check|bench|conform --engine NAME}, and
 * {@link GradSamplers#sampler}. Providers are found with {@link java.util.ServiceLoader}: list the
 * implementing class in {@code META-INF/services/dev.psg4j.engine.GradSamplerProvider} of your jar
 * and give the jar with {@code --plugin my.jar} (or put it on the class path). psg4j's own engines
 * are registered the same way.
 *
 * <p>An implementation needs a public no-argument constructor and must be cheap to construct: the
 * registry instantiates every provider it finds to learn its name.
 */
public interface GradSamplerProvider {
    /** The engine's name for {@code --engine}: 1 to 64 characters of {@code [a-z0-9._-]}, unique. */
    String name();

    /** One line saying what the sampler is, for listings. */
    String description();

    /**
     * The options {@link #create} understands: option name → one line on its values and default.
     * {@code --engine-option NAME=VALUE} sets one; any other name is refused before {@code create}.
     */
    default Map<String, String> options() {
        return Map.of();
    }

    /** A sampler configured with {@code options} (only names from {@link #options()}, values unparsed). */
    GradSampler create(SamplerOptions options);
}
