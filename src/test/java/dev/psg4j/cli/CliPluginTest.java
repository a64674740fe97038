package dev.psg4j.cli;

import dev.psg4j.engine.PluginJars;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code --engine NAME --plugin JAR}: a sampler from its own jar, checked with one command. */
class CliPluginTest {
    @TempDir
    static Path dir;
    static Path jar;

    @BeforeAll
    static void buildPlugin() {
        jar = PluginJars.build("hooks-linear", dir);
    }

    @Test
    void aPluginSamplerIsCheckedByName() {
        List<String> args = new ArrayList<>(CliRun.checkArgs("mlp"));
        args.addAll(List.of("--engine", "example-hooks-linear", "--plugin", jar.toString()));
        CliRun run = CliRun.asMain(args.toArray(String[]::new));
        assertEquals(0, run.status(), run.all());
        assertTrue(run.out().contains("engine example-hooks-linear"), run.out());
    }

    @Test
    void enginesListsBuiltInsAndPlugins() {
        CliRun run = CliRun.asMain("engines", "--plugin", jar.toString());
        assertEquals(0, run.status(), run.all());
        assertTrue(run.out().contains("vmap  (psg4j)"), run.out());
        assertTrue(run.out().contains("--engine-option chunk-size=..."), run.out());
        assertTrue(run.out().contains("example-hooks-linear  (" + jar.toAbsolutePath().normalize()), run.out());
    }

    @Test
    void anUnknownEngineOrBrokenPluginIsExitTwoWithOneLine() {
        List<String> args = new ArrayList<>(CliRun.checkArgs("mlp"));
        args.addAll(List.of("--engine", "example-hooks-linear"));
        CliRun unknown = CliRun.asMain(args.toArray(String[]::new));
        assertEquals(2, unknown.status(), unknown.all());
        assertEquals(1, unknown.errLines().size(), unknown.err());
        assertTrue(unknown.err().contains("--plugin"), unknown.err());

        List<String> missing = new ArrayList<>(CliRun.checkArgs("mlp"));
        missing.addAll(List.of("--engine", "example-hooks-linear", "--plugin", dir.resolve("absent.jar").toString()));
        CliRun absent = CliRun.asMain(missing.toArray(String[]::new));
        assertEquals(2, absent.status(), absent.all());
        assertEquals(1, absent.errLines().size(), absent.err());
        assertTrue(absent.err().contains("absent.jar does not exist"), absent.err());

        List<String> shorthand = new ArrayList<>(CliRun.checkArgs("mlp"));
        shorthand.addAll(List.of("--engine", "microbatch", "--chunk-size", "4"));
        CliRun wrong = CliRun.asMain(shorthand.toArray(String[]::new));
        assertEquals(2, wrong.status(), wrong.all());
        assertTrue(wrong.err().contains("--chunk-size is an option of the vmap engine"), wrong.err());
    }
}
