package dev.psg4j;

/** The model or the loss failed while running (a LibTorch error, a Java callback's throw). */
public class ModelExecutionException extends Psg4jException {
    public ModelExecutionException(String message, Throwable cause) {
        super(message, cause);
    }
}
