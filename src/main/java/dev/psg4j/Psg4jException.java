package dev.psg4j;

/** Base of psg4j's exceptions: the message says what was wrong and what to do. */
public class Psg4jException extends RuntimeException {
    public Psg4jException(String message) {
        super(message);
    }

    public Psg4jException(String message, Throwable cause) {
        super(message, cause);
    }
}
