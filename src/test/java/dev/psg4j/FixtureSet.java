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

/**
 * A folder of Python-made fixtures on the test class path with its manifest.json: an array of
 * cases, each a folder {@code <name>/} holding model.pt, the inputs, the targets and gradients.
 */
public final class FixtureSet {
    private final Path root;
    private final JsonNode manifest;

    private FixtureSet(Path root, JsonNode manifest) {
        this.root = root;
        this.manifest = manifest;
    }

    /** The set under class-path folder {@code folder} (e.g. "/fixtures"). */
    public static FixtureSet of(String folder) {
        try {
            Path root = Path.of(FixtureSet.class.getResource(folder + "/manifest.json").toURI()).getParent();
            return new FixtureSet(root, new ObjectMapper().readTree(root.resolve("manifest.json").toFile()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    public Path root() {
        return root;
    }

    public Path file(String fixture, String name) {
        return root.resolve(fixture).resolve(name);
    }

    public JsonNode entry(String fixture) {
        for (JsonNode e : manifest) {
            if (e.get("name").asText().equals(fixture)) {
                return e;
            }
        }
        throw new IllegalArgumentException("no fixture " + fixture + " in " + root);
    }

    public List<String> names() {
        List<String> out = new ArrayList<>();
        manifest.forEach(e -> out.add(e.get("name").asText()));
        return out;
    }

    /** The fixture's inputs in forward-argument order. */
    public List<Tensor> inputs(String fixture) {
        return new ArrayList<>(TensorMaps.load(file(fixture, entry(fixture).get("inputs").get(0).asText())).values());
    }

    public List<Tensor> targets(String fixture) {
        JsonNode target = entry(fixture).get("target");
        if (target == null || target.isNull()) {
            return List.of();
        }
        return new ArrayList<>(TensorMaps.load(file(fixture, target.asText())).values());
    }

    public Map<String, Tensor> grads(String fixture, String file) {
        return TensorMaps.load(file(fixture, file));
    }
}
