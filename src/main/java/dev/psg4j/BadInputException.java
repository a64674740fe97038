package dev.psg4j;

/** The caller's data, files or options are wrong: an empty batch, a bad batch dimension, ... */
public class BadInputException extends Psg4jException {
    public BadInputException(String message) {
        super(message);
    }

    public BadInputException(String message, Throwable cause) {
        super(message, cause);
    }

    /**
     * {@code value}, or, where it is null, a BadInputException saying that {@code argument} is null
     * and that the caller should pass {@code whatToPass} instead (not a bare NullPointerException).
     */
    public static <T> T requireNonNull(T value, String argument, String whatToPass) {
        if (value == null) {
            throw new BadInputException(argument + " is null: pass " + whatToPass);
        }
        return value;
    }
}
