package dev.psg4j.conform;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.psg4j.BadInputException;
import dev.psg4j.check.Loss;
import dev.psg4j.engine.TensorMaps;
import dev.psg4j.internal.InputFiles;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;

import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;

/**
 * A folder of TorchScript configurations in the layout of psg4j's TorchScript layer matrix
 * (src/test/python/make_layer_matrix.py): {@code manifest.json}, a list of entries {@code {"name",
 * "layer" (or "layers": [...]), "inputs": ["x.pt"], "target": "y.pt" or null, "batch_dim",
 * "loss"}}, and per entry a folder {@code <name>/} holding {@code model.pt} and those files. Each
 * runs at the batch size its inputs have; its layer kinds are the manifest's {@code layer(s)}.
 */
public final class TorchScriptMatrix {
    /** The most entries a manifest may list. */
    public static final int MAX_ENTRIES = 10_000;

    private TorchScriptMatrix() {
    }

    /** The configurations of {@code dir}, named "torchscript/&lt;name&gt;"; a bad folder is one BadInputException line. */
    public static List<Configuration> load(Path dir) {
        BadInputException.requireNonNull(dir, "dir", "a folder with manifest.json");
        Path manifest = dir.resolve("manifest.json");
        String layout = "a folder laid out as psg4j's TorchScript layer matrix (manifest.json and one folder per entry)";
        if (!Files.exists(manifest, LinkOption.NOFOLLOW_LINKS)) {
            throw new BadInputException("--torchscript " + dir + " has no manifest.json: give " + layout);
        }
        InputFiles.requireReadable(manifest, "", "a JSON list of entries in " + layout);
        JsonNode entries;
        try {
            entries = new ObjectMapper().readTree(manifest.toFile());
        } catch (IOException e) {
            throw new BadInputException(manifest + " is not JSON (" + e.getMessage().lines().findFirst().orElse("")
                    + "): write a list of entries");
        }
        if (entries == null || !entries.isArray() || entries.size() > MAX_ENTRIES) {
            throw new BadInputException(manifest + " must hold a list of at most " + MAX_ENTRIES + " entries");
        }
        List<Configuration> out = new ArrayList<>();
        for (JsonNode entry : entries) {
            out.add(configuration(dir, manifest, entry));
        }
        return out;
    }

    private static Configuration configuration(Path dir, Path manifest, JsonNode entry) {
        String name = text(entry, "name", manifest);
        Path folder = dir.resolve(name).normalize();
        if (!folder.startsWith(dir.normalize()) || !Files.isRegularFile(folder.resolve("model.pt"))) {
            throw new BadInputException("entry '" + name + "' of " + manifest + " has no " + folder.resolve("model.pt")
                    + ": each entry needs its folder with model.pt");
        }
        JsonNode inputs = entry.get("inputs");
        if (inputs == null || !inputs.isArray() || inputs.size() != 1) {
            throw new BadInputException("entry '" + name + "' of " + manifest + " needs \"inputs\": [\"x.pt\"]");
        }
        Path x = folder.resolve(inputs.get(0).asText());
        JsonNode target = entry.get("target");
        Path y = target == null || target.isNull() ? null : folder.resolve(target.asText());
        int batchDim = entry.path("batch_dim").asInt(0);
        Loss loss = Loss.named(entry.path("loss").asText("l1"));
        List<String> kinds = kinds(entry, name, manifest);
        long batchSize = entry.path("batch_size").asLong(0);
        return new Configuration("torchscript/" + name, batchSize > 0 ? OptionalLong.of(batchSize) : OptionalLong.empty(),
                b -> instance(folder, x, y, batchDim, loss, kinds), null);
    }

    private static Instance instance(Path folder, Path x, Path y, int batchDim, Loss loss, List<String> kinds) {
        List<Tensor> inputs = new ArrayList<>(TensorMaps.load(x).values());
        List<Tensor> targets = y == null ? List.of() : new ArrayList<>(TensorMaps.load(y).values());
        Model model = Models.torchScript(folder.resolve("model.pt"));
        return new Instance(model, inputs, targets, batchDim, 0, loss, kinds);
    }

    private static List<String> kinds(JsonNode entry, String name, Path manifest) {
        JsonNode layers = entry.get("layers");
        if (layers != null && layers.isArray()) {
            List<String> out = new ArrayList<>();
            layers.forEach(l -> out.add(l.asText()));
            return out;
        }
        return List.of(text(entry, "layer", manifest));
    }

    private static String text(JsonNode entry, String field, Path manifest) {
        JsonNode value = entry == null ? null : entry.get(field);
        if (value == null || !value.isTextual() || value.asText().isBlank()) {
            throw new BadInputException("an entry of " + manifest + " lacks \"" + field + "\": each entry needs a name, "
                    + "its layer kind, inputs, batch_dim and loss");
        }
        return value.asText();
    }
}
