package dev.psg4j.check;

import com.fasterxml.jackson.databind.JsonNode;

import dev.psg4j.FixtureSet;
import dev.psg4j.Fixtures;
import dev.psg4j.cli.demo.Demo;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.Diagnosis;
import dev.psg4j.report.DiagnosisKind;
import dev.psg4j.report.FailureKind;
import dev.psg4j.report.ProbeReport;

import org.bytedeco.pytorch.BatchNorm1dImpl;
import org.bytedeco.pytorch.BatchNormOptions;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The probes on models no engine test uses: every mixing model of make_probe_fixtures.py is
 * flagged with the right samples (all of them, and the sources of every one the manifest lists)
 * and the right submodule (a chain of submodules run one by one,
 * or, for other TorchScript forwards, the submodule of the first op whose output mixes); no
 * clean one is flagged, nor any model of the vmap layer matrix; dropout is found
 * non-deterministic.
 */
class ProbesTest {
    private static final FixtureSet PROBES = Fixtures.PROBES;

    /** Layer-matrix models that do mix, through .item() or a branch on a whole-batch sum (they exist to test vmap's refusals). */
    private static final Set<String> MIXING_THROUGH_ITEM = Set.of("item_scale", "data_dependent_branch");

    static List<String> probeCases() {
        return PROBES.names();
    }

    static List<String> layerMatrixCases() {
        return Fixtures.LAYER_MATRIX.names().stream().filter(n -> !MIXING_THROUGH_ITEM.contains(n)).toList();
    }

    private static ProbeReport probe(FixtureSet set, String name) {
        JsonNode entry = set.entry(name);
        int batchDim = entry.get("batch_dim").asInt();
        try (Model model = Models.torchScript(set.file(name, "model.pt"));
             Batch batch = new Batch(set.inputs(name), List.of(), batchDim, batchDim)) {
            return Probes.report(model, batch, Probes.DEFAULT_PROBE_SAMPLES);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("probeCases")
    void findingsMatchTheManifest(String name) {
        JsonNode entry = PROBES.entry(name);
        ProbeReport report = probe(PROBES, name);
        assertEquals(entry.get("deterministic").asBoolean(), report.deterministic(), report::toJson);
        if (!report.deterministic()) {
            assertTrue(report.diagnoses().get(0).message().startsWith("non-deterministic forward"), report::toJson);
            return;
        }
        boolean mixes = entry.get("mixes").asBoolean();
        assertEquals(!mixes, report.batchIndependent(), report::toJson);
        int batchSize = entry.get("batch_size").asInt();
        entry.get("leaks").fields().forEachRemaining(leak -> {
            List<Integer> expected = new ArrayList<>();
            leak.getValue().forEach(j -> expected.add(j.asInt()));
            int sample = Integer.parseInt(leak.getKey());
            assertEquals(expected, report.leaks().getOrDefault(sample, List.of()),
                    () -> "leaks into sample " + sample + ": " + report.toJson());
        });
        assertEquals(affectedByPattern(entry.get("leak_pattern").asText(), batchSize), report.affectedSamples(),
                report::toJson);
        assertTrue(report.leaksComplete(), "B <= probe samples: every flagged sample named: " + report.toJson());
        if (!mixes) {
            assertTrue(report.diagnoses().isEmpty(), report::toJson);
            return;
        }
        Diagnosis diagnosis = report.diagnoses().get(0);
        assertEquals(DiagnosisKind.BATCH_MIXING, diagnosis.kind());
        assertEquals(entry.get("mixing_module").asText(), report.mixingModule(), report::toJson);
        assertEquals(report.mixingModule(), diagnosis.param());
        assertTrue(diagnosis.message().contains("submodule '" + report.mixingModule() + "'"), diagnosis::message);
    }

    /** The samples whose output depends on others, for a manifest's leak pattern over all B samples. */
    private static List<Integer> affectedByPattern(String pattern, int batchSize) {
        List<Integer> out = new ArrayList<>();
        int first = switch (pattern) {
            case "none" -> batchSize;
            case "all" -> 0;
            case "earlier" -> 1;
            default -> throw new IllegalArgumentException("leak pattern " + pattern);
        };
        for (int i = first; i < batchSize; i++) {
            out.add(i);
        }
        return out;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("layerMatrixCases")
    void noModelOfTheVmapMatrixIsFlagged(String name) {
        ProbeReport report = probe(Fixtures.LAYER_MATRIX, name);
        assertTrue(report.passed() && report.diagnoses().isEmpty(), report::toJson);
    }

    @Test
    void aBatchMaximumTakenThroughItemIsFoundByRunningSamplesAlone() {
        ProbeReport report = probe(Fixtures.LAYER_MATRIX, "item_scale");
        assertFalse(report.batchIndependent(), report::toJson);
        assertFalse(report.differsAlone().isEmpty(), report::toJson);
    }

    @Test
    void javaBuiltBatchNormInTrainModeIsLocalized() {
        torch.manual_seed(4);
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("fc", new LinearImpl(5, 4));
        BatchNorm1dImpl bn = Models.forSequential(new BatchNorm1dImpl(new BatchNormOptions(4)));
        seq.push_back("bn", bn);
        seq.push_back("out", new LinearImpl(4, 2));
        try (Model model = Models.module(seq); Batch batch = Batch.of(torch.randn(6, 5))) {
            seq.train(true);
            Probes.BatchIndependence train = Probes.batchIndependence(model, batch);
            assertFalse(train.independent());
            assertEquals("bn", train.mixingModule().orElseThrow());
            assertEquals(List.of(1, 2, 3, 4, 5), train.leaks().get(0));
            seq.train(false);
            assertTrue(Probes.batchIndependence(model, batch).independent());
        }
    }

    @Test
    void aCheckOfAMixingModelFailsWithTheDiagnosisAndComparesNothing() {
        String name = "subtract_batch_mean";
        try (Model model = Models.torchScript(PROBES.file(name, "model.pt"));
             PerSampleCheck probed = PerSampleCheck.builder().model(model).inputs(PROBES.inputs(name)).build();
             PerSampleCheck unprobed = PerSampleCheck.builder().model(model).inputs(PROBES.inputs(name))
                     .probes(false).build()) {
            CheckReport report = probed.run(Engines.microbatch());
            assertFalse(report.passed(), report::summary);
            assertTrue(report.failures().isEmpty() && report.reductions().isEmpty(), report::summary);
            Diagnosis d = report.diagnoses().get(0);
            assertEquals(DiagnosisKind.BATCH_MIXING, d.kind());
            assertEquals("1", d.param());
            assertTrue(report.summary().contains("Mixing starts in submodule '1'"), report::summary);
            assertTrue(unprobed.run(Engines.microbatch()).passed(), "without probes the engines agree");
        }
    }

    @Test
    void theTransposeTrapDoesNotMixButItsBatchFirstSamplerIsWrong() {
        try (Model model = Demo.transposeTrap();
             PerSampleCheck check = PerSampleCheck.builder().model(model)
                     .inputs(torch.randn(Demo.B, Demo.B, 4)).build()) {
            CheckReport report = check.run(Demo.batchFirstSamplerOnTrap());
            assertTrue(report.diagnoses().isEmpty(), report::summary);
            assertFalse(report.passed());
            assertTrue(report.failures().stream().anyMatch(f -> f.param().equals("fc.weight") && f.kind() == FailureKind.VALUE),
                    report::summary);
        }
    }
}
