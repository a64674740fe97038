package dev.psg4j.internal;

import dev.psg4j.bridge.CloseGuard;
import dev.psg4j.bridge.NativeCore.NativeBatch;
import dev.psg4j.bridge.NativeCore.NativeLoss;
import dev.psg4j.bridge.NativeCore.NativeModel;
import dev.psg4j.check.Batch;
import dev.psg4j.check.Loss;
import dev.psg4j.model.Model;

/**
 * psg4j's own way to the native handles behind {@link Model}, {@link Batch} and {@link Loss}, for
 * its engines and checks in other packages. Not API: the public classes keep these methods
 * package-private, so that the bridge's types never appear in what users compile against. Each
 * class installs its accessor once, in its static initializer (so it is there before any instance
 * exists); a second installation is refused.
 */
public final class NativeHandles {
    /** What {@link Model} lends psg4j's engines. */
    public interface ModelAccess {
        NativeModel handle(Model model);

        CloseGuard.Use use(Model model);
    }

    /** What {@link Batch} and {@link Loss} lend psg4j's engines. */
    public interface CheckAccess {
        NativeBatch handle(Batch batch);

        NativeLoss newHandle(Loss loss);
    }

    private static volatile ModelAccess models;
    private static volatile CheckAccess checks;

    private NativeHandles() {
    }

    /** Called once, by Model's static initializer. */
    public static synchronized void install(ModelAccess access) {
        if (models != null) {
            throw new IllegalStateException("the model accessor is installed already");
        }
        models = access;
    }

    /** Called once, by the check package's static initializer (Batch). */
    public static synchronized void install(CheckAccess access) {
        if (checks != null) {
            throw new IllegalStateException("the check accessor is installed already");
        }
        checks = access;
    }

    /** The model's native handle, inside a {@link #use(Model)}; IllegalStateException when it is closed. */
    public static NativeModel handle(Model model) {
        return models.handle(model);
    }

    /** Starts a use of the model's handle: {@code Model.close()} waits until it has ended. */
    public static CloseGuard.Use use(Model model) {
        return models.use(model);
    }

    /** The batch's native handle. */
    public static NativeBatch handle(Batch batch) {
        return checks().handle(batch);
    }

    /** A new native handle of the loss, the caller's to close. */
    public static NativeLoss newHandle(Loss loss) {
        return checks().newHandle(loss);
    }

    private static CheckAccess checks() {
        CheckAccess access = checks;
        if (access == null) {
            // Batch installs the accessor; a Loss can exist before any Batch class is initialized.
            try {
                Class.forName(Batch.class.getName(), true, NativeHandles.class.getClassLoader());
            } catch (ClassNotFoundException e) {
                throw new IllegalStateException(e);
            }
            access = checks;
        }
        return access;
    }
}
