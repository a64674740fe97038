package dev.psg4j;

/** The caller's data, files or options are wrong: an empty batch, a bad batch dimension, ... */
public class BadInputException extends Psg4jException {
    public BadInputException(String message) {
        super(message);
    }

    public BadInputException(String message, Throwable cause) {
        super(message, cause);
    }
}
