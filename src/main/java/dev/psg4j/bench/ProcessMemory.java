package dev.psg4j.bench;

import dev.psg4j.internal.SystemMemory;

import org.bytedeco.javacpp.Pointer;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.management.JMException;
import javax.management.ObjectName;

/**
 * This process's resident memory split into the Java heap's resident pages and the rest (native
 * memory and the JVM's own). Resident means anonymous resident pages, what the process allocated:
 * its libraries' file pages are left out (the kernel drops and re-reads them at will), as
 * {@link Pointer#physicalBytes()} leaves them out. The heap's <em>committed</em> size is not its
 * resident size: the collector commits regions long before it first writes them (G1 resizes its young generation for thousands of
 * allocations after start-up), so "resident - committed heap" grows by tens of MB while no native
 * byte is allocated, and reads negative early on. Instead the heap's address range comes from the
 * JVM ({@code GC.heap_info}, as {@code jcmd} prints it) and the pages resident in it from
 * {@code /proc/self/smaps}. Where either is missing (not Linux, or a collector such as ZGC that does
 * not print its range) the committed heap stands in for the heap, and {@link Reading#heapLocated()}
 * says so.
 */
final class ProcessMemory {
    private static final Path SMAPS = Path.of("/proc/self/smaps");
    /** A bracketed address list of GC.heap_info: "[0x..., 0x...)" (G1) or with 3-4 addresses (Parallel, Serial). */
    private static final Pattern ADDRESS_LIST = Pattern.compile("\\[(0x[0-9a-fA-F]+(?:\\s*,\\s*0x[0-9a-fA-F]+)+)\\)");
    /** A mapping's first smaps line, "start-end perms offset dev inode [path]": its start. */
    private static final Pattern MAPPING = Pattern.compile("^([0-9a-fA-F]+)-[0-9a-fA-F]+\\s");
    /** The resident pages of a mapping that are not file pages. */
    private static final String ANONYMOUS = "Anonymous:";
    private static final Optional<AddressRange> HEAP = heapRange(gcHeapInfo());

    private ProcessMemory() {
    }

    /**
     * Resident bytes of the whole process and of the Java heap in it; {@code heapLocated} false when
     * {@code heapBytes} is the committed heap instead (see the class comment).
     */
    record Reading(long residentBytes, long heapBytes, boolean heapLocated) {
        long nativeBytes() {
            return residentBytes - heapBytes;
        }
    }

    /** The addresses [start, end) of the heap's reservation. */
    record AddressRange(long start, long end) {
        boolean contains(long address) {
            return Long.compareUnsigned(address, start) >= 0 && Long.compareUnsigned(address, end) < 0;
        }
    }

    /** Whether this JVM says where its heap lies and this system lists its resident pages. */
    static boolean heapLocated() {
        return HEAP.isPresent() && Files.isReadable(SMAPS);
    }

    static Reading read() {
        if (heapLocated()) {
            try (BufferedReader smaps = Files.newBufferedReader(SMAPS, StandardCharsets.US_ASCII)) {
                return fromSmaps(smaps, HEAP.get());
            } catch (IOException | UncheckedIOException e) {
                // fall through: the committed heap stands in
            }
        }
        long heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getCommitted();
        return new Reading(Pointer.physicalBytes(), heap, false);
    }

    /** Sums the Anonymous lines of {@code smaps}: all, and those of mappings that start inside {@code heap}. */
    static Reading fromSmaps(BufferedReader smaps, AddressRange heap) throws IOException {
        long resident = 0;
        long heapResident = 0;
        boolean inHeap = false;
        for (String line = smaps.readLine(); line != null; line = smaps.readLine()) {
            if (line.startsWith(ANONYMOUS)) {
                long bytes = SystemMemory.kilobyteField(line.substring(ANONYMOUS.length()));
                resident += bytes;
                heapResident += inHeap ? bytes : 0;
                continue;
            }
            Matcher mapping = MAPPING.matcher(line);
            if (mapping.find()) {
                inHeap = heap.contains(Long.parseUnsignedLong(mapping.group(1), 16));
            }
        }
        return new Reading(resident, heapResident, true);
    }

    /**
     * The heap's reservation from GC.heap_info's text: the lowest and highest address in its
     * bracketed address lists (the whole heap for G1; the generations, which tile it, for Parallel
     * and Serial); empty when it has none.
     */
    static Optional<AddressRange> heapRange(String gcHeapInfo) {
        Matcher lists = ADDRESS_LIST.matcher(gcHeapInfo);
        long low = -1;
        long high = 0;
        while (lists.find()) {
            for (String address : lists.group(1).split(",")) {
                long value = Long.parseUnsignedLong(address.strip().substring(2), 16);
                low = low == -1 ? value : Math.min(low, value);
                high = Math.max(high, value);
            }
        }
        return low == -1 || high <= low ? Optional.empty() : Optional.of(new AddressRange(low, high));
    }

    /** What {@code jcmd <pid> GC.heap_info} prints for this JVM; empty where the JVM has no such command. */
    private static String gcHeapInfo() {
        try {
            Object text = ManagementFactory.getPlatformMBeanServer().invoke(
                    new ObjectName("com.sun.management:type=DiagnosticCommand"), "gcHeapInfo",
                    new Object[] {null}, new String[] {String[].class.getName()});
            return text instanceof String s ? s : "";
        } catch (JMException | RuntimeException e) {
            return "";
        }
    }
}
