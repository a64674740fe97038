package dev.psg4j.internal;

import dev.psg4j.BadInputException;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashSet;
import java.util.Locale;
import java.util.OptionalLong;
import java.util.Set;

/**
 * The one gate for every file psg4j reads on a caller's behalf (models, batches, targets,
 * candidates, plug-in jars, manifests): a regular file, readable, of a bounded size, checked from
 * its attributes before anything opens it.
 *
 * <p>Note [Why only regular files]: opening a named pipe for reading blocks until a writer comes,
 * and a device such as /dev/zero never ends, so a FIFO or a device given by mistake would hang the
 * caller or fill its memory instead of failing. Nothing psg4j reads needs to be streamed.
 *
 * <p>Note [The size bound]: a file is read whole into memory (a TorchScript module's tensors, a
 * batch, per-sample gradients of B × |θ| floats), so one larger than the memory the machine has
 * left cannot be read; refusing it up front, in one line, beats a machine swapping for minutes
 * and an out-of-memory kill. The bound is the memory available now (the kernel's MemAvailable, or
 * less where a control group limits the process); the system property {@value #MAX_BYTES_PROPERTY}
 * (bytes, or with a K, M, G or T suffix) sets it instead, higher where swap makes room, lower to
 * guard a shared machine.
 */
public final class InputFiles {
    /** The system property that sets the largest file psg4j reads, instead of the memory available. */
    public static final String MAX_BYTES_PROPERTY = "psg4j.input.maxBytes";
    /** How many symbolic links a path may go through, as Linux allows (its ELOOP limit). */
    private static final int MAX_LINKS = 40;
    private static final int S_IFMT = 0170000;
    private static final int S_IFIFO = 0010000;
    private static final int S_IFCHR = 0020000;
    private static final int S_IFBLK = 0060000;
    private static final int S_IFSOCK = 0140000;

    private InputFiles() {
    }

    /**
     * Checks that {@code file} is a regular, readable file of at most {@link #maxBytes()} bytes and
     * returns its size; otherwise a BadInputException in one line naming {@code role} and the file
     * ("model file m.pt"; {@code role} may be empty), the real cause, and what to do, ending with
     * "give " + {@code give} ("the file written by torch.save").
     */
    public static long requireReadable(Path file, String role, String give) {
        BadInputException.requireNonNull(file, "file", give);
        String named = (role == null || role.isEmpty() ? "" : role + " ") + file;
        BasicFileAttributes attributes = attributes(file, named, give);
        if (attributes.isDirectory()) {
            throw new BadInputException(named + " is a directory, not a file: give " + give);
        }
        if (!attributes.isRegularFile()) {
            throw new BadInputException(named + " is " + kind(file) + ", not a regular file: psg4j reads only "
                    + "regular files (a pipe waits for a writer, a device never ends); save what it holds to a "
                    + "file and give " + give);
        }
        if (!Files.isReadable(file)) {
            throw new BadInputException(named + " cannot be read (permission denied): give " + give
                    + " that this user may read");
        }
        long size = attributes.size();
        OptionalLong bound = maxBytes();
        if (bound.isPresent() && size > bound.getAsLong()) {
            boolean set = System.getProperty(MAX_BYTES_PROPERTY) != null;
            throw new BadInputException(named + " is " + SystemMemory.describe(size) + ", more than the "
                    + SystemMemory.describe(bound.getAsLong()) + (set ? " that -D" + MAX_BYTES_PROPERTY + " allows"
                    : " of memory available to read it") + ": give a smaller file, or set -D" + MAX_BYTES_PROPERTY
                    + "=SIZE (e.g. 64g) if the machine can hold it");
        }
        return size;
    }

    /**
     * The largest file psg4j reads: {@value #MAX_BYTES_PROPERTY} if set, else the memory available
     * now (see the class comment); empty where neither is known.
     */
    public static OptionalLong maxBytes() {
        String set = System.getProperty(MAX_BYTES_PROPERTY);
        return set == null ? SystemMemory.availableBytes() : OptionalLong.of(parseSize(set));
    }

    /** "123", "64k", "512M", "16g", "1t" (binary units, case ignored) in bytes; a bad one is a BadInputException. */
    static long parseSize(String text) {
        String s = text.strip().toLowerCase(Locale.ROOT);
        int shift = switch (s.isEmpty() ? ' ' : s.charAt(s.length() - 1)) {
            case 'k' -> 10;
            case 'm' -> 20;
            case 'g' -> 30;
            case 't' -> 40;
            default -> 0;
        };
        try {
            long value = Long.parseLong(shift == 0 ? s : s.substring(0, s.length() - 1).strip());
            if (value < 0 || value > (Long.MAX_VALUE >> shift)) {
                throw new NumberFormatException();
            }
            return value << shift;
        } catch (NumberFormatException e) {
            throw new BadInputException("-D" + MAX_BYTES_PROPERTY + "=" + text + " is not a size: give bytes, or a "
                    + "number with k, m, g or t (e.g. 64g)");
        }
    }

    /** The file's attributes, its links followed; a path that leads nowhere says where it broke. */
    private static BasicFileAttributes attributes(Path file, String named, String give) {
        try {
            return Files.readAttributes(file, BasicFileAttributes.class);
        } catch (NoSuchFileException e) {
            Path target = finalTarget(file);
            if (target != null && !target.equals(file.toAbsolutePath().normalize())) {
                throw new BadInputException(named + " is a symbolic link to " + target + ", which does not exist: give "
                        + give);
            }
            throw new BadInputException(named + " does not exist: give " + give);
        } catch (AccessDeniedException e) {
            throw new BadInputException(named + " cannot be reached (permission denied on the path): give " + give
                    + " that this user may read");
        } catch (FileSystemException e) {
            if (finalTarget(file) == null) {
                throw new BadInputException(named + " is a symbolic link loop (following its links never reaches a "
                        + "file): give " + give);
            }
            throw new BadInputException("cannot read " + named + " (" + reason(e) + "): give " + give);
        } catch (IOException e) {
            throw new BadInputException("cannot read " + named + " (" + reason(e) + "): give " + give);
        }
    }

    /**
     * Where the chain of symbolic links from {@code file} ends (the file itself if it is none);
     * null when the chain loops or is longer than Linux follows. Only the last path element's
     * links are followed here: a loop in a folder of the path shows as the system's own error.
     */
    private static Path finalTarget(Path file) {
        Set<Path> seen = new HashSet<>();
        Path at = file.toAbsolutePath().normalize();
        for (int hops = 0; hops <= MAX_LINKS; hops++) {
            if (!Files.isSymbolicLink(at)) {
                return at;
            }
            if (!seen.add(at)) {
                return null;
            }
            try {
                Path parent = at.getParent();
                Path link = Files.readSymbolicLink(at);
                at = (parent == null ? link : parent.resolve(link)).normalize();
            } catch (IOException e) {
                return at;
            }
        }
        return null;
    }

    /** What a path that is neither a directory nor a regular file is, from its mode bits where the platform has them. */
    private static String kind(Path file) {
        try {
            Object mode = Files.getAttribute(file, "unix:mode");
            if (mode instanceof Integer m) {
                switch (m & S_IFMT) {
                    case S_IFIFO:
                        return "a named pipe (FIFO)";
                    case S_IFCHR:
                        return "a character device";
                    case S_IFBLK:
                        return "a block device";
                    case S_IFSOCK:
                        return "a socket";
                    default:
                        break;
                }
            }
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            // No unix view (not a POSIX platform): say what is certain.
        }
        return "a special file";
    }

    private static String reason(IOException e) {
        if (e instanceof FileSystemException f && f.getReason() != null) {
            return f.getReason();
        }
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }
}
