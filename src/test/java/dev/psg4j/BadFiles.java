package dev.psg4j;

import org.bytedeco.pytorch.ByteVector;
import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.JitModule;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * Files a new user gives by mistake, made at run time in a test's folder (no Python needed): a
 * named pipe, a symbolic link loop, a huge sparse file, tensors of other dtypes, a tensor saved from
 * the meta device, the mlp fixture's model in another dtype.
 */
public final class BadFiles {
    private BadFiles() {
    }

    /** A named pipe (mkfifo) with no writer: opening it for reading would block. */
    public static Path fifo(Path dir, String name) {
        Path fifo = dir.resolve(name);
        try {
            Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
            if (!mkfifo.waitFor(10, TimeUnit.SECONDS) || mkfifo.exitValue() != 0) {
                throw new IllegalStateException("mkfifo " + fifo + " failed");
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
        return fifo;
    }

    /** Two symbolic links pointing at each other; returns the first. */
    public static Path symlinkLoop(Path dir, String name) {
        Path a = dir.resolve(name);
        Path b = dir.resolve(name + ".other");
        try {
            Files.createSymbolicLink(a, b.getFileName());
            Files.createSymbolicLink(b, a.getFileName());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return a;
    }

    /** A symbolic link to a file that does not exist. */
    public static Path danglingLink(Path dir, String name) {
        Path link = dir.resolve(name);
        try {
            Files.createSymbolicLink(link, dir.resolve("no_such_target.pt"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return link;
    }

    /** A sparse file of {@code bytes} (no disk blocks written): larger than any machine's memory at a TiB. */
    public static Path sparse(Path dir, String name, long bytes) {
        Path file = dir.resolve(name);
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return file;
    }

    /** {@code tensor} as torch.save writes it (LibTorch's pickle_save: the format torch.load reads). */
    public static Path tensor(Path dir, String name, Tensor tensor) {
        Path file = dir.resolve(name);
        try (IValue value = new IValue(tensor); ByteVector bytes = torch.pickle_save(value)) {
            Files.write(file, bytes.get());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return file;
    }

    /**
     * A torch.save archive of a float tensor [6, 8] whose storage location is the meta device, as
     * Python's torch.save writes a tensor of a model built with device='meta': with its data record
     * (bytes of no meaning) or, {@code withData} false, without it.
     */
    public static Path metaTensor(Path dir, String name, boolean withData) {
        Path cpu = tensor(dir, name + ".cpu", torch.zeros(6, 8));
        byte[] cpuLocation = location("cpu");
        byte[] metaLocation = location("meta");
        Path file = dir.resolve(name);
        // ZipFile, not ZipInputStream: LibTorch's writer gives its stored entries data descriptors,
        // which only the central directory describes.
        try (ZipFile in = new ZipFile(cpu.toFile());
             ZipOutputStream out = new ZipOutputStream(Files.newOutputStream(file))) {
            boolean patched = false;
            for (ZipEntry entry : Collections.list(in.entries())) {
                byte[] bytes;
                try (InputStream data = in.getInputStream(entry)) {
                    bytes = data.readAllBytes();
                }
                if (entry.getName().endsWith("/data.pkl")) {
                    int at = indexOf(bytes, cpuLocation);
                    if (at < 0) {
                        throw new IllegalStateException("no 'cpu' storage location in " + entry.getName());
                    }
                    bytes = splice(bytes, at, cpuLocation.length, metaLocation);
                    patched = true;
                } else if (!withData && entry.getName().matches(".*/data/\\d+")) {
                    continue;
                }
                stored(out, entry.getName(), bytes);
            }
            if (!patched) {
                throw new IllegalStateException("pickle_save wrote no data.pkl");
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return file;
    }

    /** The mlp fixture's TorchScript model with its parameters in {@code dtype}, saved into {@code dir}. */
    public static Path mlpModelIn(Path dir, torch.ScalarType dtype) {
        Path file = dir.resolve("mlp_" + dtype.name().toLowerCase(java.util.Locale.ROOT) + ".pt");
        try (JitModule module = torch.load(Fixtures.file("mlp", "model.pt").toString())) {
            module.to(dtype);
            module.save(file.toString());
        }
        return file;
    }

    /** A pickle protocol-2 BINUNICODE string: the way a storage's location is written. */
    private static byte[] location(String device) {
        byte[] text = device.getBytes(StandardCharsets.US_ASCII);
        byte[] out = new byte[5 + text.length];
        out[0] = 'X';
        out[1] = (byte) text.length;
        System.arraycopy(text, 0, out, 5, text.length);
        return out;
    }

    private static void stored(ZipOutputStream out, String name, byte[] bytes) throws IOException {
        ZipEntry entry = new ZipEntry(name);
        entry.setMethod(ZipEntry.STORED);
        entry.setSize(bytes.length);
        CRC32 crc = new CRC32();
        crc.update(bytes);
        entry.setCrc(crc.getValue());
        out.putNextEntry(entry);
        out.write(bytes);
        out.closeEntry();
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    private static byte[] splice(byte[] bytes, int at, int length, byte[] with) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(bytes, 0, at);
        out.write(with, 0, with.length);
        out.write(bytes, at + length, bytes.length - at - length);
        return out.toByteArray();
    }
}
