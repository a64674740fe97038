package dev.psg4j.engine;

import dev.psg4j.BadInputException;
import dev.psg4j.Psg4jException;
import dev.psg4j.check.GradSampler;
import dev.psg4j.internal.InputFiles;

import java.io.IOException;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.regex.Pattern;
import java.util.zip.ZipFile;

/**
 * The registry of grad samplers by name: psg4j's own engines and every {@link GradSamplerProvider}
 * that {@link ServiceLoader} finds on the class path or in plug-in jars. {@code --engine NAME} is
 * one {@link #sampler} lookup here, whoever provides the name.
 *
 * <p>A broken plug-in (a jar that is not there or not a jar, a provider class that is missing or
 * throws while loading, two providers with one name, a jar that registers nothing) is a
 * {@link BadInputException} with one line naming the jar and the cause. Close the registry when its
 * samplers are no longer used: that closes the plug-ins' class loader.
 */
public final class GradSamplers implements AutoCloseable {
    /** The most plug-in jars one registry takes. */
    public static final int MAX_PLUGINS = 64;
    private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9._-]{0,63}");
    private static final String SERVICE_FILE = "META-INF/services/" + GradSamplerProvider.class.getName();

    private final Map<String, Registered> byName;
    private final URLClassLoader pluginLoader;

    /** One provider and where it came from ("psg4j", "class path" or the plug-in jar). */
    public record Registered(GradSamplerProvider provider, String origin) {
        public String name() {
            return provider.name();
        }
    }

    private GradSamplers(Map<String, Registered> byName, URLClassLoader pluginLoader) {
        this.byName = Collections.unmodifiableMap(byName);
        this.pluginLoader = pluginLoader;
    }

    /** The samplers on psg4j's class path: its own engines and any provider jar already there. */
    public static GradSamplers builtIn() {
        return load(GradSamplers.class.getClassLoader(), null, List.of());
    }

    /** {@link #builtIn()} plus the providers of these plug-in jars (each must register at least one). */
    public static GradSamplers withPlugins(List<Path> jars) {
        BadInputException.requireNonNull(jars, "jars", "a list of plug-in jar paths (may be empty)");
        if (jars.isEmpty()) {
            return builtIn();
        }
        if (jars.size() > MAX_PLUGINS) {
            throw new BadInputException(jars.size() + " plug-in jars given; at most " + MAX_PLUGINS + " are taken");
        }
        List<Path> normalized = new ArrayList<>();
        URL[] urls = new URL[jars.size()];
        for (int k = 0; k < jars.size(); k++) {
            Path jar = requireJar(jars.get(k));
            normalized.add(jar);
            urls[k] = url(jar);
        }
        URLClassLoader loader = new URLClassLoader("psg4j-plugins", urls, GradSamplers.class.getClassLoader());
        try {
            return load(loader, loader, normalized);
        } catch (RuntimeException | Error e) {
            closeQuietly(loader);
            throw e;
        }
    }

    /** Every registered sampler, by name, in the order found (psg4j's own first). */
    public List<Registered> registered() {
        return List.copyOf(byName.values());
    }

    /** The names {@code --engine} takes. */
    public List<String> names() {
        return List.copyOf(byName.keySet());
    }

    /** The provider named {@code name}; a BadInputException listing the registered names when none is. */
    public Registered provider(String name) {
        BadInputException.requireNonNull(name, "name", "an engine name, e.g. vmap");
        Registered found = byName.get(name);
        if (found == null) {
            throw new BadInputException("unknown engine '" + name + "': the registered grad samplers are "
                    + String.join(", ", byName.keySet())
                    + " (a plug-in's engine needs its jar: --plugin my-sampler.jar)");
        }
        return found;
    }

    /** The sampler named {@code name}, made with {@code options} (names its provider does not declare are refused). */
    public GradSampler sampler(String name, Map<String, String> options) {
        Registered registered = provider(name);
        GradSamplerProvider provider = registered.provider();
        SamplerOptions given = new SamplerOptions(name, options == null ? Map.of() : options)
                .requireKnown(provider.options());
        GradSampler sampler;
        try {
            sampler = provider.create(given);
        } catch (Psg4jException e) {
            throw e;
        } catch (RuntimeException | LinkageError e) {
            throw new BadInputException("engine " + name + " (" + registered.origin() + ") failed to start: "
                    + describe(e) + ": fix the provider's create()", e);
        }
        if (sampler == null) {
            throw new BadInputException("engine " + name + " (" + registered.origin() + ") returned no sampler "
                    + "from create(): return a GradSampler");
        }
        return sampler;
    }

    /** {@link #sampler(String, Map)} without options. */
    public GradSampler sampler(String name) {
        return sampler(name, Map.of());
    }

    @Override
    public void close() {
        if (pluginLoader != null) {
            closeQuietly(pluginLoader);
        }
    }

    private static GradSamplers load(ClassLoader loader, URLClassLoader pluginLoader, List<Path> plugins) {
        Map<String, Registered> byName = new LinkedHashMap<>();
        Iterator<GradSamplerProvider> it = ServiceLoader.load(GradSamplerProvider.class, loader).iterator();
        while (true) {
            GradSamplerProvider provider;
            try {
                if (!it.hasNext()) {
                    break;
                }
                provider = it.next();
            } catch (ServiceConfigurationError e) {
                throw new BadInputException("cannot load a grad sampler provider" + pluginsPhrase(plugins) + ": "
                        + describe(e) + ": each line of " + SERVICE_FILE + " must name a public class with a public "
                        + "no-argument constructor that implements GradSamplerProvider and loads without throwing", e);
            }
            register(byName, provider, origin(provider, plugins));
        }
        for (Path jar : plugins) {
            String origin = jar.toString();
            if (byName.values().stream().noneMatch(r -> r.origin().equals(origin))) {
                throw new BadInputException("plug-in " + jar + " registers no grad sampler: add " + SERVICE_FILE
                        + " to the jar, listing your GradSamplerProvider class");
            }
        }
        return new GradSamplers(byName, pluginLoader);
    }

    private static void register(Map<String, Registered> byName, GradSamplerProvider provider, String origin) {
        String name;
        try {
            name = provider.name();
        } catch (RuntimeException e) {
            throw new BadInputException("the grad sampler provider " + provider.getClass().getName() + " (" + origin
                    + ") throws from name(): " + describe(e), e);
        }
        if (name == null || !NAME.matcher(name).matches()) {
            throw new BadInputException("the grad sampler provider " + provider.getClass().getName() + " (" + origin
                    + ") is named " + (name == null ? "null" : "'" + name + "'")
                    + ": an engine name is 1 to 64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit");
        }
        Registered earlier = byName.get(name);
        if (earlier != null) {
            throw new BadInputException("two grad samplers are named '" + name + "': "
                    + earlier.provider().getClass().getName() + " (" + earlier.origin() + ") and "
                    + provider.getClass().getName() + " (" + origin + "): rename one provider");
        }
        byName.put(name, new Registered(provider, origin));
    }

    /** The plug-in jar the provider's class was loaded from, else "psg4j" or "class path". */
    private static String origin(GradSamplerProvider provider, List<Path> plugins) {
        if (provider.getClass().getClassLoader() == GradSamplers.class.getClassLoader()
                && provider.getClass().getPackageName().startsWith("dev.psg4j.")) {
            return "psg4j";
        }
        CodeSource source = provider.getClass().getProtectionDomain().getCodeSource();
        if (source != null && source.getLocation() != null) {
            for (Path jar : plugins) {
                if (source.getLocation().equals(url(jar))) {
                    return jar.toString();
                }
            }
        }
        return "class path";
    }

    private static Path requireJar(Path jar) {
        BadInputException.requireNonNull(jar, "a plug-in path", "the path of a jar");
        Path absolute = jar.toAbsolutePath().normalize();
        InputFiles.requireReadable(jar, "plug-in", "the jar that holds your GradSamplerProvider (--plugin my-sampler.jar)");
        try (ZipFile zip = new ZipFile(absolute.toFile())) {
            if (zip.getEntry(SERVICE_FILE) == null) {
                throw new BadInputException("plug-in " + jar + " has no " + SERVICE_FILE
                        + ": list your GradSamplerProvider class in that file inside the jar");
            }
        } catch (IOException e) {
            throw new BadInputException("plug-in " + jar + " is not a readable jar (" + e.getMessage()
                    + "): give a jar built from your sampler's classes");
        }
        return absolute;
    }

    private static URL url(Path jar) {
        try {
            return jar.toUri().toURL();
        } catch (MalformedURLException e) {
            throw new BadInputException("plug-in path " + jar + " cannot be read as a URL: " + e.getMessage());
        }
    }

    private static String pluginsPhrase(List<Path> plugins) {
        return plugins.isEmpty() ? "" : " (plug-ins: " + plugins + ")";
    }

    private static String describe(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String first = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        if (root != e) {
            first += " (" + root.getClass().getSimpleName() + (root.getMessage() == null ? "" : ": " + root.getMessage()) + ")";
        }
        int newline = first.indexOf('\n');
        return newline < 0 ? first : first.substring(0, newline);
    }

    private static void closeQuietly(URLClassLoader loader) {
        try {
            loader.close();
        } catch (IOException ignored) {
            // nothing left to release
        }
    }
}
