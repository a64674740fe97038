package dev.psg4j.engine;

import com.fasterxml.jackson.databind.JsonNode;

import dev.psg4j.FixtureSet;
import dev.psg4j.Fixtures;
import dev.psg4j.GradAssertions;
import dev.psg4j.UnsupportedModelException;
import dev.psg4j.check.Batch;
import dev.psg4j.check.Loss;
import dev.psg4j.junit.PerSampleAssertions;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Reduction;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.Locale;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;


/**
 * The vmap engine on the TorchScript layer matrix (src/test/python/make_layer_matrix.py, after
 * Opacus's grad-sample tests): it passes the check for both reductions, equals the gradients
 * Python computed (torch.func, or a microbatch loop where torch.func cannot vmap), and gives the
 * same gradients in chunks. That includes the cases torch.func's vmap fails on (manifest
 * expect_vmap "unsupported": GRU/RNN from their default hidden state), which the engine runs by
 * retrying with per-sample parameters. Where the manifest says the engine cannot run a case
 * (engine_vmap "unsupported": data-dependent control flow, .item(), in-place writes into the
 * input) it refuses with an UnsupportedModelException naming the op, and the microbatch engine
 * still passes.
 */
class TorchScriptVmapMatrixTest {
    private static final FixtureSet MATRIX = Fixtures.LAYER_MATRIX;

    static List<String> cases() {
        return MATRIX.names();
    }

    private static boolean engineRuns(JsonNode entry) {
        JsonNode expect = entry.get("engine_vmap");
        return expect == null || expect.asText().equals("pass");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void vmapPassesTheCheckAndEqualsPython(String name) {
        JsonNode entry = MATRIX.entry(name);
        int batchDim = entry.get("batch_dim").asInt();
        Loss loss = Loss.named(entry.get("loss").asText());
        try (Model model = Models.torchScript(MATRIX.file(name, "model.pt"));
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(MATRIX.inputs(name))
                     .targets(MATRIX.targets(name)).batchDim(batchDim).targetBatchDim(0).loss(loss)
                     .probes(false).build();
             Batch batch = new Batch(MATRIX.inputs(name), MATRIX.targets(name), batchDim, 0)) {
            if (!engineRuns(entry)) {
                String op = entry.get("engine_unsupported_op").asText();
                UnsupportedModelException e = assertThrows(UnsupportedModelException.class,
                        () -> check.run(Engines.vmap()));
                assertTrue(e.getMessage().contains(op) && e.getMessage().contains("--engine microbatch"),
                        e::getMessage);
                PerSampleAssertions.assertCorrect(check.run(Engines.microbatch()));
                return;
            }
            PerSampleAssertions.assertCorrect(check.run(Engines.vmap()));
            for (Reduction reduction : Reduction.values()) {
                String label = reduction.name().toLowerCase(Locale.ROOT);
                Map<String, Tensor> vmap = Engines.vmap().perSampleGradients(model, batch, loss, reduction);
                GradAssertions.assertClose(MATRIX.grads(name, "grads_" + label + ".pt"), vmap, 1e-5, 1e-4,
                        name + " " + label + " vs Python");
                Map<String, Tensor> chunked = Engines.vmap().chunkSize(2).perSampleGradients(model, batch, loss, reduction);
                GradAssertions.assertClose(vmap, chunked, 1e-6, 1e-5, name + " " + label + " in chunks of 2");
            }
        }
    }
}
