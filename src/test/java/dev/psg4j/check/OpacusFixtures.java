package dev.psg4j.check;

import dev.psg4j.FixtureSet;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.Diagnosis;

import com.fasterxml.jackson.databind.JsonNode;

import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * The Opacus exports of src/test/python/make_opacus_fixtures.py (fixtures/opacus): per case and
 * reduction, GradSampleModule's grad_sample, ghost clipping's norms, DPOptimizer's summed_grad and
 * planted bugs with the diagnosis, parameter and samples a check must name.
 */
final class OpacusFixtures {
    static final FixtureSet SET = FixtureSet.of("/fixtures/opacus");

    private OpacusFixtures() {
    }

    /** A planted bug of one case and reduction, as the manifest lists it. */
    record Bug(String fixture, Reduction reduction, String file, String diagnosis, String param, List<Integer> samples,
               Double maxGradNorm, String clipping) {
        boolean isNorms() {
            return maxGradNorm == null;
        }

        @Override
        public String toString() {
            return fixture + "/" + file;
        }
    }

    static List<String> cases() {
        return SET.names();
    }

    static JsonNode reduction(String fixture, Reduction reduction) {
        return SET.entry(fixture).get("reductions").get(reduction.label());
    }

    static double maxGradNorm(String fixture, Reduction reduction) {
        return reduction(fixture, reduction).get("max_grad_norm").asDouble();
    }

    static List<Bug> bugs() {
        List<Bug> out = new ArrayList<>();
        for (String fixture : cases()) {
            for (Reduction r : Reduction.values()) {
                for (JsonNode b : reduction(fixture, r).get("bugs")) {
                    List<Integer> samples = null;
                    if (b.hasNonNull("samples")) {
                        samples = new ArrayList<>();
                        for (JsonNode s : b.get("samples")) {
                            samples.add(s.asInt());
                        }
                    }
                    out.add(new Bug(fixture, r, b.get("file").asText(), b.get("diagnosis").asText(),
                            b.hasNonNull("param") ? b.get("param").asText() : null, samples,
                            b.hasNonNull("max_grad_norm") ? b.get("max_grad_norm").asDouble() : null,
                            b.hasNonNull("clipping") ? b.get("clipping").asText() : null));
                }
            }
        }
        return out;
    }

    /** Runs {@code body} on a check of the fixture's model and batch for one reduction, at {@code threads} (0: the default). */
    static CheckReport check(String fixture, Reduction reduction, int threads, Function<PerSampleCheck, CheckReport> body) {
        JsonNode e = SET.entry(fixture);
        try (Model model = Models.torchScript(SET.file(fixture, "model.pt"))) {
            PerSampleCheck.Builder builder = PerSampleCheck.builder().model(model).inputs(SET.inputs(fixture))
                    .targets(SET.targets(fixture)).loss(Loss.named(e.get("loss").asText())).reduction(reduction);
            if (threads > 0) {
                builder.threads(threads);
            }
            try (PerSampleCheck check = builder.build()) {
                return body.apply(check);
            }
        }
    }

    static Map<String, Tensor> file(String fixture, String name) {
        return SET.grads(fixture, name);
    }

    static String diagnosisKinds(CheckReport report) {
        return report.diagnoses().stream().map(d -> d.kind().label()).collect(Collectors.joining(", "));
    }
}
