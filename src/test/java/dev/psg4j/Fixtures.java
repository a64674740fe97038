package dev.psg4j;

import com.fasterxml.jackson.databind.JsonNode;

import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The Python-made fixtures: {@link #BASIC} (src/test/python/make_fixtures.py: models with
 * torch.func, Opacus and planted-bug candidates) and {@link #LAYER_MATRIX}
 * (src/test/python/make_layer_matrix.py: one case per layer configuration) and {@link #PROBES}
 * (src/test/python/make_probe_fixtures.py: batch-mixing, clean and random models). The static methods
 * read {@link #BASIC}.
 */
public final class Fixtures {
    public static final FixtureSet BASIC = FixtureSet.of("/fixtures");
    public static final FixtureSet LAYER_MATRIX = FixtureSet.of("/layer_matrix");
    public static final FixtureSet PROBES = FixtureSet.of("/probe_fixtures");
    /** src/test/python/make_tied_fixtures.py: TorchScript models with tied parameters, torch.func and Opacus candidates. */
    public static final FixtureSet TIED = FixtureSet.of("/tied_fixtures");

    private Fixtures() {
    }

    public static Path root() {
        return BASIC.root();
    }

    public static Path file(String fixture, String name) {
        return BASIC.file(fixture, name);
    }

    public static JsonNode entry(String fixture) {
        return BASIC.entry(fixture);
    }

    public static List<String> names() {
        return BASIC.names();
    }

    /** The fixture's inputs in forward-argument order. */
    public static List<Tensor> inputs(String fixture) {
        return BASIC.inputs(fixture);
    }

    public static List<Tensor> targets(String fixture) {
        return BASIC.targets(fixture);
    }

    public static Map<String, Tensor> grads(String fixture, String file) {
        return BASIC.grads(fixture, file);
    }
}
