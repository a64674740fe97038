package dev.psg4j;

/**
 * An engine cannot run this model although the model runs one sample at a time (the reference
 * can): for the vmap engine an op with no batching rule, data-dependent control flow,
 * {@code .item()}, an in-place write into an input, or a random op under randomness "error". The
 * message names the op that failed and says what to use instead (usually the microbatch engine).
 */
public class UnsupportedModelException extends ModelExecutionException {
    public UnsupportedModelException(String message, Throwable cause) {
        super(message, cause);
    }
}
