package dev.psg4j.engine;

import dev.psg4j.check.GradSampler;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.Tensor;

import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;

/**
 * Builds plug-in jars the way a user outside the project would: javac against psg4j's and
 * bytedeco's classes only, then a jar with the sources' resources (META-INF/services).
 */
public final class PluginJars {
    /** The example plug-ins' sources, one folder per plug-in. */
    public static final Path SOURCES = Paths.get("src", "test", "plugins");

    private PluginJars() {
    }

    /** The plug-in under {@code src/test/plugins/<name>} compiled and jarred into {@code dir}. */
    public static Path build(String name, Path dir) {
        return build(SOURCES.resolve(name), Map.of(), dir.resolve(name + ".jar"));
    }

    /**
     * A jar from the sources and resources under {@code root} (may be null) plus {@code extra}
     * (relative path → content: more sources or resources, e.g. a services file).
     */
    public static Path build(Path root, Map<String, String> extra, Path jar) {
        try {
            Path work = Files.createTempDirectory("psg4j-plugin");
            Path src = work.resolve("src");
            Path classes = work.resolve("classes");
            Files.createDirectories(classes);
            if (root != null) {
                copyTree(root, src);
            }
            for (Map.Entry<String, String> e : extra.entrySet()) {
                Path file = src.resolve(e.getKey());
                Files.createDirectories(file.getParent());
                Files.writeString(file, e.getValue());
            }
            compile(src, classes);
            jar(src, classes, jar);
            return jar;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void compile(Path src, Path classes) throws IOException {
        List<String> sources;
        try (Stream<Path> files = Files.walk(src)) {
            sources = files.filter(f -> f.toString().endsWith(".java")).map(Path::toString).toList();
        }
        if (sources.isEmpty()) {
            return;
        }
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        List<String> args = new ArrayList<>(List.of("-d", classes.toString(), "-classpath", classPath(), "--release", "17"));
        args.addAll(sources);
        ByteArrayOutputStream errors = new ByteArrayOutputStream();
        int status = javac.run(null, errors, errors, args.toArray(String[]::new));
        if (status != 0) {
            throw new IllegalStateException("plug-in does not compile:\n" + errors.toString(StandardCharsets.UTF_8));
        }
    }

    /** psg4j's classes and the bytedeco jars: all a plug-in compiles against. */
    private static String classPath() {
        return String.join(java.io.File.pathSeparator, location(GradSampler.class), location(Tensor.class),
                location(Pointer.class));
    }

    private static String location(Class<?> type) {
        try {
            return Paths.get(type.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void jar(Path src, Path classes, Path jar) throws IOException {
        Files.createDirectories(jar.toAbsolutePath().getParent());
        try (OutputStream file = Files.newOutputStream(jar); JarOutputStream out = new JarOutputStream(file)) {
            add(out, classes, f -> true);
            add(out, src, f -> !f.toString().endsWith(".java"));
        }
    }

    private static void add(JarOutputStream out, Path root, java.util.function.Predicate<Path> keep) throws IOException {
        if (!Files.isDirectory(root)) {
            return;
        }
        List<Path> files;
        try (Stream<Path> walk = Files.walk(root)) {
            files = walk.filter(Files::isRegularFile).filter(keep).sorted().toList();
        }
        for (Path f : files) {
            out.putNextEntry(new JarEntry(root.relativize(f).toString().replace('\\', '/')));
            Files.copy(f, out);
            out.closeEntry();
        }
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> walk = Files.walk(from)) {
            for (Path f : walk.toList()) {
                Path target = to.resolve(from.relativize(f).toString());
                if (Files.isDirectory(f)) {
                    Files.createDirectories(target);
                } else {
                    Files.createDirectories(target.getParent());
                    Files.copy(f, target);
                }
            }
        }
    }
}
