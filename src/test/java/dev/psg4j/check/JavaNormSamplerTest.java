package dev.psg4j.check;

import dev.psg4j.FixtureSet;
import dev.psg4j.Fixtures;
import dev.psg4j.bridge.Natives;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.report.CheckReport;
import dev.psg4j.report.ParamReport;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A user's norm and clipped-sum samplers written in Java (here: from the vmap engine's
 * gradients), checked for both reductions on a model with a tied weight: the tied parameter
 * counts once, by whichever name the sampler uses.
 */
class JavaNormSamplerTest {
    private static final FixtureSet TIED = Fixtures.TIED;

    /** Per-sample squared norms [B] of one gradient [B, *shape]. */
    private static Tensor squares(Tensor g) {
        return g.flatten(1, -1).square().sum(1);
    }

    /** Norms from vmap gradients; {@code alias} renames the tied weight "a.weight" to "b.weight". */
    private static NormSampler vmapNorms(boolean whole, boolean alias) {
        return new NormSampler() {
            @Override
            public String name() {
                return "vmap-norms";
            }

            @Override
            public Map<String, Tensor> perSampleNorms(Model model, Batch batch, Loss loss, Reduction reduction) {
                Map<String, Tensor> grads = Engines.vmap().perSampleGradients(model, batch, loss, reduction);
                try (NoGradGuard noGrad = new NoGradGuard()) {
                    Map<String, Tensor> out = new LinkedHashMap<>();
                    Tensor total = null;
                    for (Map.Entry<String, Tensor> e : grads.entrySet()) {
                        Tensor s = squares(e.getValue());
                        total = total == null ? s : total.add(s);
                        out.put(alias && e.getKey().equals("a.weight") ? "b.weight" : e.getKey(), s.sqrt());
                    }
                    return whole ? Map.of(WHOLE_GRADIENT, total.sqrt()) : out;
                } finally {
                    Natives.closeAll(grads);
                }
            }
        };
    }

    /** Opacus's flat clipped sum Σᵢ gᵢ·min(1, C / (‖gᵢ‖ + 1e-6)) from vmap gradients, times {@code scale}. */
    private static ClippedSumSampler vmapClippedSum(double scale) {
        return new ClippedSumSampler() {
            @Override
            public String name() {
                return "vmap-clipped-sum";
            }

            @Override
            public Map<String, Tensor> clippedSum(Model model, Batch batch, Loss loss, Reduction reduction,
                                                  Clipping clipping) {
                Map<String, Tensor> grads = Engines.vmap().perSampleGradients(model, batch, loss, reduction);
                try (NoGradGuard noGrad = new NoGradGuard()) {
                    Tensor total = null;
                    for (Tensor g : grads.values()) {
                        Tensor s = squares(g);
                        total = total == null ? s : total.add(s);
                    }
                    Tensor factor = total.sqrt().add(new Scalar(1e-6)).reciprocal()
                            .mul(new Scalar(clipping.thresholds().get(0))).clamp_max(new Scalar(1.0));
                    Map<String, Tensor> out = new LinkedHashMap<>();
                    for (Map.Entry<String, Tensor> e : grads.entrySet()) {
                        Tensor g = e.getValue();
                        out.put(e.getKey(), g.flatten(1, -1).mul(factor.unsqueeze(1)).sum(0).mul(new Scalar(scale))
                                .view(shapeOf(g)));
                    }
                    return out;
                } finally {
                    Natives.closeAll(grads);
                }
            }
        };
    }

    private static long[] shapeOf(Tensor g) {
        long[] batched = g.sizes().vec().get();
        return java.util.Arrays.copyOfRange(batched, 1, batched.length);
    }

    private static CheckReport check(java.util.function.Function<PerSampleCheck, CheckReport> body) {
        try (Model model = Models.torchScript(TIED.file("tied_linear", "model.pt"));
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(TIED.inputs("tied_linear"))
                     .reductions(Reduction.SUM, Reduction.MEAN).build()) {
            return body.apply(check);
        }
    }

    @Test
    void wholeAndPerParameterNormsPassForBothReductionsWithATiedWeightByEitherName() {
        for (boolean whole : new boolean[] {true, false}) {
            for (boolean alias : new boolean[] {false, true}) {
                CheckReport report = check(c -> c.runNorms(vmapNorms(whole, alias)));
                assertTrue(report.passed(), report::table);
                assertEquals(2, report.reductions().size());
                List<String> names = report.reductions().get(0).params().stream().map(ParamReport::name).toList();
                assertEquals(whole ? List.of(NormVerdicts.WHOLE)
                        : List.of(alias ? "b.weight" : "a.weight", "a.bias", "b.bias"), names);
            }
        }
    }

    @Test
    void aJavaClippedSumPassesAndTwiceItFails() {
        CheckReport right = check(c -> c.runClippedSum(vmapClippedSum(1.0), Clipping.flat(0.5)));
        assertTrue(right.passed(), right::table);
        assertEquals(List.of("a.weight", "a.bias", "b.bias"), right.reductions().get(0).params().stream()
                .map(ParamReport::name).toList());
        assertEquals(List.of("b.weight"), right.reductions().get(0).params().get(0).aliases());
        CheckReport twice = check(c -> c.runClippedSum(vmapClippedSum(2.0), Clipping.flat(0.5)));
        assertFalse(twice.passed());
        assertEquals(6, twice.failures().size(), twice::toJson);  // 3 parameters × 2 reductions
    }
}
