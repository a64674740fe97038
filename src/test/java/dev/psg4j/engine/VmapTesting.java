package dev.psg4j.engine;

import dev.psg4j.GradAssertions;
import dev.psg4j.Psg4jException;
import dev.psg4j.check.Batch;
import dev.psg4j.check.GradSampler;
import dev.psg4j.check.Loss;
import dev.psg4j.junit.PerSampleAssertions;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Reduction;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;
import dev.psg4j.conform.Problem;
import dev.psg4j.report.CheckReport;

import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.Conv1dImpl;
import org.bytedeco.pytorch.Conv1dOptions;
import org.bytedeco.pytorch.Conv1dPadding;
import org.bytedeco.pytorch.Conv2dImpl;
import org.bytedeco.pytorch.Conv2dOptions;
import org.bytedeco.pytorch.Conv2dPadding;
import org.bytedeco.pytorch.Conv3dImpl;
import org.bytedeco.pytorch.Conv3dOptions;
import org.bytedeco.pytorch.Conv3dPadding;
import org.bytedeco.pytorch.ConvTranspose1dImpl;
import org.bytedeco.pytorch.ConvTranspose1dOptions;
import org.bytedeco.pytorch.ConvTranspose2dImpl;
import org.bytedeco.pytorch.ConvTranspose2dOptions;
import org.bytedeco.pytorch.ConvTranspose3dImpl;
import org.bytedeco.pytorch.ConvTranspose3dOptions;
import org.bytedeco.pytorch.GRUImpl;
import org.bytedeco.pytorch.GRUOptions;
import org.bytedeco.pytorch.LSTMImpl;
import org.bytedeco.pytorch.LSTMOptions;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.RNNImpl;
import org.bytedeco.pytorch.RNNOptions;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.kSame;
import org.bytedeco.pytorch.kValid;
import org.opentest4j.AssertionFailedError;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Shared by the vmap matrix and property tests: standard C++-frontend layers built in Java from a
 * readable spec, and the assertion that the vmap engine passes the check and equals the microbatch
 * engine.
 */
final class VmapTesting {
    /** vmap against microbatch: |vmap - microbatch| <= ATOL + RTOL * |microbatch|, per element. */
    static final double ATOL = 1e-5;
    static final double RTOL = 1e-4;

    private VmapTesting() {
    }

    /**
     * Runs {@code engine} (the vmap engine, or a sabotaged one) in a check of {@code problem} for {@code reductions}, asserts it passes
     * (failing with the verdict table), and asserts its gradients equal the microbatch engine's
     * within {@link #ATOL}/{@link #RTOL}. {@code config} heads every failure message.
     */
    static void assertVmapCorrect(String config, Problem problem, GradSampler engine, Reduction... reductions) {
        problem.module().eval();
        String engineName = engine instanceof VmapEngine ? engine.toString() : engine.name();
        Map<Reduction, Map<String, Tensor>> seen = new EnumMap<>(Reduction.class);
        GradSampler recording = new GradSampler() {
            @Override
            public String name() {
                return engineName;
            }

            @Override
            public Map<String, Tensor> perSampleGradients(Model model, Batch batch, Loss loss, Reduction reduction) {
                Map<String, Tensor> grads = engine.perSampleGradients(model, batch, loss, reduction);
                // The check closes the handles it is given: keep handles of our own.
                Map<String, Tensor> kept = new java.util.LinkedHashMap<>();
                grads.forEach((name, t) -> kept.put(name, new Tensor(t)));
                seen.put(reduction, kept);
                return grads;
            }
        };
        try (Model model = Models.module(problem.module());
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(problem.inputs())
                     .targets(problem.targets()).batchDim(problem.batchDim()).loss(problem.loss())
                     .reductions(reductions.length == 0 ? Reduction.values() : reductions).build()) {
            CheckReport report;
            try {
                report = check.run(recording);
            } catch (Psg4jException e) {
                throw new AssertionFailedError(config + ": engine " + engineName + " threw "
                        + e.getClass().getSimpleName() + ": " + e.getMessage(), e);
            }
            try {
                PerSampleAssertions.assertCorrect(report);
            } catch (AssertionFailedError e) {
                throw new AssertionFailedError(config + ": " + e.getMessage(), e);
            }
            assertEquals(check.reductions().size(), seen.size(), config);
            for (Reduction reduction : check.reductions()) {
                Map<String, Tensor> vmap = seen.get(reduction);
                Map<String, Tensor> micro = Engines.microbatch().perSampleGradients(model, check.batch(),
                        check.loss(), reduction);
                GradAssertions.assertClose(micro, vmap, ATOL, RTOL, config + " " + reduction.label() + " vmap vs microbatch");
            }
        }
    }

    static List<Long> shape(Tensor t) {
        List<Long> out = new ArrayList<>();
        for (int d = 0; d < t.dim(); d++) {
            out.add(t.size(d));
        }
        return out;
    }
}
