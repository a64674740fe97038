package dev.psg4j.conform;

import dev.psg4j.BadInputException;

import java.util.OptionalLong;
import java.util.function.LongFunction;

/**
 * One configuration of the layer matrix: a name ("Conv2d(2->4, k=3, groups=2) on 7x7"), how to
 * build its model and batch at a batch size, and, for the batch-of-1 configurations, the one batch
 * size it runs at. {@link Conformance} seeds LibTorch from the name and B before building, so a
 * configuration is the same at every run.
 *
 * @param name           unique in its matrix; what {@code --only} matches
 * @param fixedBatchSize the batch size this configuration always runs at (batch of 1), or empty: each one asked
 * @param build          makes the model and batch at a batch size; the caller closes the instance
 * @param problem        the C++-frontend module and batch at a batch size (for tests that run them
 *                       otherwise); null for TorchScript configurations
 */
public record Configuration(String name, OptionalLong fixedBatchSize, LongFunction<Instance> build,
                            LongFunction<Problem> problem) {
    /** A C++-frontend configuration run at every batch size asked. */
    public static Configuration frontend(String name, LongFunction<Problem> problem) {
        return new Configuration(name, OptionalLong.empty(), b -> Instance.of(problem.apply(b)), problem);
    }

    /** A C++-frontend configuration that always runs at {@code batchSize} (the batch-of-1 ones). */
    public static Configuration frontend(String name, long batchSize, LongFunction<Problem> problem) {
        return new Configuration(name, OptionalLong.of(batchSize), b -> Instance.of(problem.apply(b)), problem);
    }

    /** The batch sizes this configuration runs at, out of those asked. */
    public long[] batchSizes(long[] asked) {
        return fixedBatchSize.isPresent() ? new long[] {fixedBatchSize.getAsLong()} : asked.clone();
    }

    /** The C++-frontend problem at {@code batchSize}; a BadInputException for a TorchScript configuration. */
    public Problem problem(long batchSize) {
        if (problem == null) {
            throw new BadInputException("configuration " + name + " is a TorchScript model, not a C++-frontend module: "
                    + "use build(batchSize)");
        }
        return problem.apply(fixedBatchSize.orElse(batchSize));
    }

    @Override
    public String toString() {
        return name;
    }
}
