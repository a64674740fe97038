package dev.psg4j;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.psg4j.engine.TensorMaps;

import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** The Python-made fixtures (src/test/python/make_fixtures.py) and their manifest. */
public final class Fixtures {
    private static final Path ROOT;
    private static final JsonNode MANIFEST;

    static {
        try {
            ROOT = Path.of(Fixtures.class.getResource("/fixtures/manifest.json").toURI()).getParent();
            MANIFEST = new ObjectMapper().readTree(ROOT.resolve("manifest.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private Fixtures() {
    }

    public static Path root() {
        return ROOT;
    }

    public static Path file(String fixture, String name) {
        return ROOT.resolve(fixture).resolve(name);
    }

    public static JsonNode entry(String fixture) {
        for (JsonNode e : MANIFEST) {
            if (e.get("name").asText().equals(fixture)) {
                return e;
            }
        }
        throw new IllegalArgumentException("no fixture " + fixture);
    }

    public static List<String> names() {
        List<String> out = new ArrayList<>();
        MANIFEST.forEach(e -> out.add(e.get("name").asText()));
        return out;
    }

    /** The fixture's inputs in forward-argument order. */
    public static List<Tensor> inputs(String fixture) {
        return new ArrayList<>(TensorMaps.load(file(fixture, entry(fixture).get("inputs").get(0).asText())).values());
    }

    public static List<Tensor> targets(String fixture) {
        JsonNode target = entry(fixture).get("target");
        if (target == null || target.isNull()) {
            return List.of();
        }
        return new ArrayList<>(TensorMaps.load(file(fixture, target.asText())).values());
    }

    public static Map<String, Tensor> grads(String fixture, String file) {
        return TensorMaps.load(file(fixture, file));
    }
}
