package dev.psg4j.engine;

import dev.psg4j.BadInputException;
import dev.psg4j.check.GradSampler;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The registry behind --engine: built-ins and plug-in jars found by ServiceLoader, and every broken plug-in. */
class GradSamplersTest {
    private static final String SERVICES = "META-INF/services/dev.psg4j.engine.GradSamplerProvider";

    @TempDir
    static Path dir;
    static Path hooksLinear;

    @BeforeAll
    static void buildPlugin() {
        hooksLinear = PluginJars.build("hooks-linear", dir);
    }

    @Test
    void builtInEnginesAreRegisteredLikeAnyProvider() {
        try (GradSamplers samplers = GradSamplers.builtIn()) {
            assertEquals(List.of("vmap", "microbatch"), samplers.names().subList(0, 2));
            assertEquals("psg4j", samplers.provider("vmap").origin());
            GradSampler vmap = samplers.sampler("vmap", Map.of("chunk-size", "4", "randomness", "same"));
            VmapEngine engine = assertInstanceOf(VmapEngine.class, vmap);
            assertEquals(4, engine.chunkSize());
            assertEquals(Randomness.SAME, engine.randomness());
            assertEquals("microbatch", samplers.sampler("microbatch").name());
        }
    }

    @Test
    void aPluginJarAddsItsSamplerNamedFromItsJar() {
        try (GradSamplers samplers = GradSamplers.withPlugins(List.of(hooksLinear))) {
            assertTrue(samplers.names().containsAll(List.of("vmap", "microbatch", "example-hooks-linear")));
            assertEquals(hooksLinear.toAbsolutePath().normalize().toString(),
                    samplers.provider("example-hooks-linear").origin());
            GradSampler sampler = samplers.sampler("example-hooks-linear");
            assertEquals("example-hooks-linear", sampler.name());
            assertTrue(sampler.supportsLayer("Linear"));
            assertFalse(sampler.supportsLayer("Conv2d"));
        }
    }

    @Test
    void unknownEnginesAndOptionsListWhatIsThere() {
        try (GradSamplers samplers = GradSamplers.builtIn()) {
            BadInputException unknown = assertThrows(BadInputException.class, () -> samplers.sampler("opacus"));
            assertTrue(unknown.getMessage().contains("unknown engine 'opacus'"), unknown.getMessage());
            assertTrue(unknown.getMessage().contains("vmap, microbatch"), unknown.getMessage());
            BadInputException option = assertThrows(BadInputException.class,
                    () -> samplers.sampler("vmap", Map.of("chunk", "3")));
            assertTrue(option.getMessage().contains("[chunk-size, randomness]"), option.getMessage());
            BadInputException none = assertThrows(BadInputException.class,
                    () -> samplers.sampler("microbatch", Map.of("chunk-size", "3")));
            assertTrue(none.getMessage().contains("it takes none"), none.getMessage());
            BadInputException value = assertThrows(BadInputException.class,
                    () -> samplers.sampler("vmap", Map.of("chunk-size", "many")));
            assertTrue(value.getMessage().contains("chunk-size=many is not a whole number"), value.getMessage());
            BadInputException negative = assertThrows(BadInputException.class,
                    () -> samplers.sampler("vmap", Map.of("chunk-size", "-1")));
            assertTrue(negative.getMessage().contains("chunk size must be positive"), negative.getMessage());
        }
    }

    @Test
    void aMissingProviderClassIsOneLineNamingIt() {
        Path jar = PluginJars.build(null, Map.of(SERVICES, "com.example.NoSuchProvider\n"), dir.resolve("missing.jar"));
        String message = refused(jar);
        assertTrue(message.contains("com.example.NoSuchProvider"), message);
        assertTrue(message.contains(SERVICES), message);
    }

    @Test
    void aProviderThatThrowsWhileLoadingIsOneLine() {
        Path jar = PluginJars.build(null, Map.of(SERVICES, "com.example.Throws\n",
                "com/example/Throws.java", provider("com.example", "Throws", "throwing",
                        "static { if (true) throw new IllegalStateException(\"no licence key\"); }")),
                dir.resolve("throws.jar"));
        String message = refused(jar);
        assertTrue(message.contains("no licence key"), message);
    }

    @Test
    void twoProvidersWithOneNameAreRefusedNamingBoth() {
        Path jar = PluginJars.build(null, Map.of(SERVICES, "com.example.Clash\n",
                "com/example/Clash.java", provider("com.example", "Clash", "vmap", "")), dir.resolve("clash.jar"));
        String message = refused(jar);
        assertTrue(message.contains("two grad samplers are named 'vmap'"), message);
        assertTrue(message.contains("dev.psg4j.engine.VmapEngineProvider (psg4j)"), message);
        assertTrue(message.contains("com.example.Clash"), message);
    }

    @Test
    void aJarWithoutProvidersOrNotThereIsRefused() throws Exception {
        Path empty = PluginJars.build(null, Map.of("README.txt", "nothing"), dir.resolve("empty.jar"));
        assertTrue(refused(empty).contains("has no " + SERVICES), refused(empty));
        assertTrue(refused(dir.resolve("absent.jar")).contains("does not exist"));
        assertTrue(refused(dir).contains("is a directory"));
        Path text = Files.writeString(dir.resolve("not-a-jar.jar"), "hello");
        assertTrue(refused(text).contains("is not a readable jar"), refused(text));
        Path badName = PluginJars.build(null, Map.of(SERVICES, "com.example.Upper\n",
                "com/example/Upper.java", provider("com.example", "Upper", "My Sampler", "")), dir.resolve("upper.jar"));
        assertTrue(refused(badName).contains("is named 'My Sampler'"), refused(badName));
    }

    private static String refused(Path jar) {
        BadInputException e = assertThrows(BadInputException.class, () -> GradSamplers.withPlugins(List.of(jar)).close());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        return e.getMessage();
    }

    private static String provider(String pkg, String cls, String name, String body) {
        return "package " + pkg + ";\n"
                + "public final class " + cls + " implements dev.psg4j.engine.GradSamplerProvider {\n"
                + body + "\n"
                + "  public String name() { return \"" + name + "\"; }\n"
                + "  public String description() { return \"test\"; }\n"
                + "  public dev.psg4j.check.GradSampler create(dev.psg4j.engine.SamplerOptions o) { return dev.psg4j.engine.Engines.microbatch(); }\n"
                + "}\n";
    }
}
