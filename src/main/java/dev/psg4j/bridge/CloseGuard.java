package dev.psg4j.bridge;

import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The lifetime of an object that owns native memory and may be used by several threads: uses
 * overlap freely, {@link #close} waits until the running ones have ended (freeing what another
 * thread's native call still reads would crash the JVM), and a use after close is an
 * {@link IllegalStateException} naming the object, not a native null pointer.
 */
public final class CloseGuard {
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final String what;
    private boolean closed;

    /** @param what the object, as the closed-use message names it ("Model", "PerSampleCheck") */
    public CloseGuard(String what) {
        this.what = what;
    }

    /** One use, ended by {@link Use#close()}. */
    @FunctionalInterface
    public interface Use extends AutoCloseable {
        @Override
        void close();
    }

    /** Starts a use; end it with try-with-resources. */
    public Use use() {
        ReentrantReadWriteLock.ReadLock read = lock.readLock();
        read.lock();
        if (closed) {
            read.unlock();
            throw new IllegalStateException("this " + what + " is closed: create a new one");
        }
        return read::unlock;
    }

    /** Runs {@code release} once all uses have ended; later calls do nothing. */
    public void close(Runnable release) {
        ReentrantReadWriteLock.WriteLock write = lock.writeLock();
        write.lock();
        try {
            if (!closed) {
                closed = true;
                release.run();
            }
        } finally {
            write.unlock();
        }
    }
}
