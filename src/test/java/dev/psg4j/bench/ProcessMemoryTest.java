package dev.psg4j.bench;

import org.bytedeco.javacpp.BytePointer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.StringReader;
import java.lang.ref.Reference;
import java.lang.management.ManagementFactory;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The resident set split into the Java heap's resident pages and native memory. */
class ProcessMemoryTest {
    private static final long MB = 1 << 20;

    @Test
    void theHeapRangeIsTheSpanOfGcHeapInfosAddressLists() {
        String g1 = " garbage-first heap   total 397312K, used 14817K [0x0000000687400000, 0x0000000800000000)\n"
                + "  region size 4096K, 3 young (12288K), 1 survivors (4096K)\n"
                + " Metaspace       used 11175K, committed 11392K, reserved 1114112K\n";
        assertEquals(Optional.of(new ProcessMemory.AddressRange(0x687400000L, 0x800000000L)), ProcessMemory.heapRange(g1));
        String parallel = " PSYoungGen      total 113152K, used 27255K [0x0000000782700000, 0x000000078a500000, 0x0000000800000000)\n"
                + "  eden space 97280K, 28% used [0x0000000782700000,0x000000078419dcb8,0x0000000788600000)\n"
                + " ParOldGen       total 258048K, used 0K [0x0000000687400000, 0x0000000697000000, 0x0000000782700000)\n";
        assertEquals(Optional.of(new ProcessMemory.AddressRange(0x687400000L, 0x800000000L)),
                ProcessMemory.heapRange(parallel));
        String zgc = " ZHeap           used 62M, capacity 378M, max capacity 6028M\n Metaspace       used 11156K\n";
        assertEquals(Optional.empty(), ProcessMemory.heapRange(zgc));
        assertEquals(Optional.empty(), ProcessMemory.heapRange(""));
    }

    @Test
    void anonymousPagesInsideTheHeapAreHeapTheOthersNativeAndFilePagesNeither() throws IOException {
        String smaps = """
                687400000-689400000 rw-p 00000000 00:00 0
                Size:              32768 kB
                Rss:               20480 kB
                Pss:               20480 kB
                Anonymous:         20480 kB
                689400000-800000000 ---p 00000000 00:00 0
                Size:            6000000 kB
                Rss:                   0 kB
                Anonymous:             0 kB
                7f0000000000-7f0000100000 rw-p 00000000 00:00 0
                Size:               1024 kB
                Rss:                1000 kB
                Anonymous:          1000 kB
                7f0000200000-7f0000300000 r-xp 00000000 08:01 123    /usr/lib/libtorch_cpu.so
                Size:               1024 kB
                Rss:                 24 kB
                Anonymous:             0 kB
                7f0000300000-7f0000301000 rw-p 00100000 08:01 123    /usr/lib/libtorch_cpu.so
                Size:                  4 kB
                Rss:                   4 kB
                Anonymous:             4 kB
                """;
        ProcessMemory.Reading reading = ProcessMemory.fromSmaps(new BufferedReader(new StringReader(smaps)),
                new ProcessMemory.AddressRange(0x687400000L, 0x800000000L));
        assertEquals((20480 + 1000 + 4) * 1024L, reading.residentBytes());
        assertEquals(20480 * 1024L, reading.heapBytes());
        assertEquals(1004 * 1024L, reading.nativeBytes());
        assertTrue(reading.heapLocated());
    }

    @Test
    @EnabledOnOs(OS.LINUX)
    void aLiveArrayIsHeapAndAFilledNativeBufferIsNot() {
        assertTrue(ProcessMemory.heapLocated(), "this JVM's heap range is unknown: " + ManagementFactory.getRuntimeMXBean().getInputArguments());
        byte[] array = new byte[(int) (128 * MB)];
        ProcessMemory.Reading withArray = ProcessMemory.read();
        long committed = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getCommitted();
        assertTrue(withArray.heapBytes() >= 128 * MB, () -> "heap resident " + withArray);
        assertTrue(withArray.heapBytes() <= committed, () -> "heap resident " + withArray + " above committed " + committed);
        try (BytePointer buffer = new BytePointer(64 * MB)) {
            buffer.fill(1);
            ProcessMemory.Reading withBuffer = ProcessMemory.read();
            long nativeGrowth = withBuffer.nativeBytes() - withArray.nativeBytes();
            assertTrue(nativeGrowth >= 60 * MB && nativeGrowth < 96 * MB,
                    () -> "native " + withArray + " -> " + withBuffer);
        }
        Reference.reachabilityFence(array);
    }
}
