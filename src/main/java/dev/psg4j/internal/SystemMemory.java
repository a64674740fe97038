package dev.psg4j.internal;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.OptionalLong;

/**
 * The machine's memory as the kernel reports it: what this process may still take without
 * swapping or meeting its control group's limit. Linux only; elsewhere {@link #availableBytes()}
 * is empty and callers skip the bounds that need it.
 */
public final class SystemMemory {
    private static final Path MEMINFO = Path.of("/proc/meminfo");
    private static final String AVAILABLE = "MemAvailable:";
    private static final Path CGROUP2 = Path.of("/sys/fs/cgroup");
    private static final Path CGROUP1 = Path.of("/sys/fs/cgroup/memory");

    private SystemMemory() {
    }

    /**
     * The bytes the kernel could hand out now: {@code MemAvailable} of /proc/meminfo (free memory
     * plus the caches it can drop), less where this process's control group (a container's limit)
     * has less headroom left; empty where neither is known.
     */
    public static OptionalLong availableBytes() {
        long available = Long.MAX_VALUE;
        boolean known = false;
        try {
            for (String line : Files.readAllLines(MEMINFO, StandardCharsets.US_ASCII)) {
                if (line.startsWith(AVAILABLE)) {
                    available = kilobyteField(line.substring(AVAILABLE.length()));
                    known = true;
                }
            }
        } catch (IOException | RuntimeException e) {
            // Not Linux, or no /proc: only a control group's limit, if any, is known.
        }
        long headroom = Math.min(headroom(CGROUP2.resolve("memory.max"), CGROUP2.resolve("memory.current"),
                CGROUP2.resolve("memory.stat"), "inactive_file "), headroom(CGROUP1.resolve("memory.limit_in_bytes"),
                CGROUP1.resolve("memory.usage_in_bytes"), CGROUP1.resolve("memory.stat"), "total_inactive_file "));
        if (headroom != Long.MAX_VALUE) {
            available = Math.min(available, headroom);
            known = true;
        }
        return known ? OptionalLong.of(Math.max(0, available)) : OptionalLong.empty();
    }

    /** The bytes of a "   1234 kB" field, as /proc's meminfo, status and smaps files write them. */
    public static long kilobyteField(String field) {
        return Long.parseLong(field.strip().split("\\s+")[0]) * 1024;
    }

    /** A size for messages, in binary units: "512 B", "3.2 MiB", "1.5 GiB", "1.0 TiB". */
    public static String describe(long bytes) {
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB"};
        if (bytes < 1024) {
            return bytes + " B";
        }
        double value = bytes / 1024.0;
        int unit = 0;
        while (value >= 1024 && unit < units.length - 1) {
            value /= 1024;
            unit++;
        }
        return String.format(Locale.ROOT, value < 10 ? "%.1f %s" : "%.0f %s", value, units[unit]);
    }

    /**
     * limit - usage of a control group's memory files, its inactive file cache counted as free (the
     * kernel drops it before it fails an allocation); Long.MAX_VALUE where unlimited or absent.
     */
    private static long headroom(Path limitFile, Path usageFile, Path statFile, String inactiveFileField) {
        try {
            String limit = Files.readString(limitFile, StandardCharsets.US_ASCII).strip();
            if (limit.equals("max")) {
                return Long.MAX_VALUE;
            }
            long bytes = Long.parseLong(limit);
            // cgroup v1 writes a page-rounded LONG_MAX for "no limit".
            if (bytes >= Long.MAX_VALUE / 2) {
                return Long.MAX_VALUE;
            }
            long usage = Long.parseLong(Files.readString(usageFile, StandardCharsets.US_ASCII).strip());
            long inactiveFile = 0;
            for (String line : Files.readAllLines(statFile, StandardCharsets.US_ASCII)) {
                if (line.startsWith(inactiveFileField)) {
                    inactiveFile = Long.parseLong(line.substring(inactiveFileField.length()).strip());
                }
            }
            return bytes - Math.max(0, usage - inactiveFile);
        } catch (IOException | RuntimeException e) {
            return Long.MAX_VALUE;
        }
    }
}
