package dev.psg4j.check;

import dev.psg4j.junit.PerSampleAssertions;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.psg4j.Fixtures;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;

import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ReportTest {
    private static CheckReport perturbedReport() {
        try (Model model = Models.torchScript(Fixtures.file("mlp", "model.pt"));
             PerSampleCheck check = FixtureMatrixTest.checkOf("mlp", model).reduction(Reduction.SUM).build()) {
            return check.run(Engines.precomputed("perturbed", Reduction.SUM, Fixtures.grads("mlp", "bug_perturbed.pt")));
        }
    }

    @Test
    void jsonHasTheDesignFieldsAndRoundTrips() throws Exception {
        CheckReport report = perturbedReport();
        JsonNode json = new ObjectMapper().readTree(report.toJson());
        for (String field : new String[] {"passed", "engine", "batch_size", "device", "reductions", "failures",
                "diagnoses"}) {
            assertTrue(json.has(field), field);
        }
        JsonNode bias = json.get("reductions").get(0).get("params").get(1);
        assertEquals("0.bias", bias.get("name").asText());
        for (String field : new String[] {"shape", "passed", "max_abs_err", "max_rel_err", "worst_sample", "bad_samples",
                "non_finite"}) {
            assertTrue(bias.has(field), field);
        }
        assertEquals(2, bias.get("worst_sample").asInt());
        assertEquals(0.05, bias.get("max_abs_err").asDouble(), 1e-6);
        JsonNode failure = json.get("failures").get(0);
        assertEquals("value", failure.get("kind").asText());
        assertEquals(2, failure.get("sample").asInt());
        assertEquals(report, CheckReport.fromJson(report.toJson()));
    }

    @Test
    void perSampleErrorsAreInTheJson() throws Exception {
        CheckReport report = perturbedReport();
        JsonNode bias = new ObjectMapper().readTree(report.toJson()).get("reductions").get(0).get("params").get(1);
        JsonNode abs = bias.get("sample_max_abs_err");
        JsonNode rel = bias.get("sample_max_rel_err");
        JsonNode ratio = bias.get("sample_max_tol_ratio");
        assertEquals(report.batchSize(), abs.size());
        assertEquals(report.batchSize(), rel.size());
        assertEquals(report.batchSize(), ratio.size());
        for (int i = 0; i < abs.size(); i++) {
            assertEquals(i == 2, ratio.get(i).asDouble() > 1, bias::toString);
            assertTrue(rel.get(i).asDouble() <= bias.get("max_rel_err").asDouble());
        }
        assertEquals(bias.get("max_abs_err").asDouble(), abs.get(2).asDouble());
        assertEquals(bias.get("max_tol_ratio").asDouble(), ratio.get(2).asDouble());

        try (Model model = Models.torchScript(Fixtures.file("mlp", "model.pt"));
             PerSampleCheck check = FixtureMatrixTest.checkOf("mlp", model).reduction(Reduction.SUM).build()) {
            CheckReport missing = check.run(Engines.precomputed("missing", Reduction.SUM,
                    Fixtures.grads("mlp", "bug_missing.pt")));
            JsonNode params = new ObjectMapper().readTree(missing.toJson()).get("reductions").get(0).get("params");
            JsonNode notCompared = null;
            for (JsonNode p : params) {
                if (!p.get("status").asText().equals("compared")) {
                    notCompared = p;
                }
            }
            assertTrue(notCompared != null, params::toString);
            for (String field : new String[] {"sample_max_abs_err", "sample_max_rel_err", "sample_max_tol_ratio"}) {
                assertTrue(notCompared.has(field) && notCompared.get(field).isNull(), notCompared::toString);
            }
            assertEquals(missing, CheckReport.fromJson(missing.toJson()));
        }
    }

    @Test
    void assertionFailureShowsTheTableAndTheCulprit() {
        AssertionFailedError e = assertThrows(AssertionFailedError.class,
                () -> PerSampleAssertions.assertCorrect(perturbedReport()));
        String message = e.getMessage();
        assertTrue(message.contains("sum / 0.bias / sample 2"), message);
        assertTrue(message.contains("MISMATCH"), message);
        assertTrue(message.contains("worst sample"), message);
        assertFalse(message.contains("2.weight / sample"), message);
    }
}
