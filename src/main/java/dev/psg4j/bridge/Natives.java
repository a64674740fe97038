package dev.psg4j.bridge;

import dev.psg4j.BadInputException;
import dev.psg4j.ModelExecutionException;
import dev.psg4j.Psg4jException;

import java.util.List;
import java.util.function.Supplier;

/**
 * Calls into {@link NativeCore} and turns its errors into psg4j's typed exceptions. The native
 * side prefixes every message with {@code psg4j:<kind>:}; a Java callback's own exception is
 * rethrown as it was.
 */
public final class Natives {
    private static final String PREFIX = "psg4j:";

    private Natives() {
    }

    /** Holds the first exception the Java callbacks of one model or loss threw, until taken. */
    public static final class CallbackFailure {
        private Throwable first;

        public synchronized void record(Throwable t) {
            if (first == null) {
                first = t;
            }
        }

        synchronized Throwable take() {
            Throwable t = first;
            first = null;
            return t;
        }
    }

    public static <T> T call(Supplier<T> body) {
        return call(List.of(), body);
    }

    /** Runs {@code body}; if a callback of {@code callbacks} threw, rethrows that exception. */
    public static <T> T call(List<CallbackFailure> callbacks, Supplier<T> body) {
        NativeCore.load();
        try {
            return body.get();
        } catch (RuntimeException e) {
            for (CallbackFailure c : callbacks) {
                Throwable t = c.take();
                if (t != null) {
                    throw rethrowable(t);
                }
            }
            throw translate(e);
        }
    }

    private static RuntimeException rethrowable(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error err) {
            throw err;
        }
        return new ModelExecutionException("a Java callback threw: " + t, t);
    }

    static RuntimeException translate(RuntimeException e) {
        String message = e.getMessage();
        if (e instanceof Psg4jException || message == null || !message.startsWith(PREFIX)) {
            return e;
        }
        int colon = message.indexOf(':', PREFIX.length());
        String kind = message.substring(PREFIX.length(), colon);
        String text = message.substring(colon + 1);
        return switch (kind) {
            case "bad_input" -> new BadInputException(text);
            default -> new ModelExecutionException(text, null);
        };
    }
}
