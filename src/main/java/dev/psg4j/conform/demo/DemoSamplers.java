package dev.psg4j.conform.demo;

import dev.psg4j.check.GradSampler;
import dev.psg4j.conform.LayerMatrix;
import dev.psg4j.engine.GradSamplerProvider;
import dev.psg4j.engine.SamplerOptions;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * The demo's hooks-style grad samplers, registered as engines ({@code psg4j conform --engine
 * demo-...}): one correct ({@value #HOOKS}) and three deliberately broken, each broken in one way
 * a hand-written sampler really goes wrong, so each fails exactly the layer-matrix rows of that
 * case and passes the rest it claims.
 */
public final class DemoSamplers {
    public static final String HOOKS = "demo-hooks";
    public static final String LINEAR_BATCH_FIRST = "demo-linear-batch-first";
    public static final String CONV_IGNORES_GROUPS = "demo-conv-ignores-groups";
    public static final String KEEPS_LAST_USE = "demo-keeps-last-use";

    private static final List<String> CONVS = List.of("Conv1d", "Conv2d", "Conv3d");

    /** A demo sampler and the configurations it should fail (by name), for the demo's "as expected". */
    public record DemoSampler(String name, String description, GradSampler sampler, Predicate<String> shouldFail) {
    }

    private DemoSamplers() {
    }

    /** The correct one: Linear (any layout) and Conv1d/2d/3d (any stride, padding, dilation, groups). */
    public static HooksSampler hooks() {
        return HooksSampler.of(HOOKS, rules(HooksGradients.linear(false), HooksGradients.conv(false), true));
    }

    /** Broken: Linear only, taking dimension 0 as the batch (time-first data comes out wrong). */
    public static HooksSampler linearBatchFirst() {
        return HooksSampler.of(LINEAR_BATCH_FIRST, rules(HooksGradients.linear(true), null, false));
    }

    /** Broken: Linear and Conv, but the conv gradient leaves out the layer's groups. */
    public static HooksSampler convIgnoresGroups() {
        return HooksSampler.of(CONV_IGNORES_GROUPS, rules(HooksGradients.linear(false), HooksGradients.conv(true), true));
    }

    /** Broken: Linear and Conv, but a layer used twice keeps the gradient of its last use only. */
    public static HooksSampler keepsLastUse() {
        return hooks().keepingLastUse(KEEPS_LAST_USE);
    }

    private static Map<String, LayerGradient> rules(LayerGradient linear, LayerGradient conv, boolean withConv) {
        Map<String, LayerGradient> rules = new LinkedHashMap<>();
        rules.put("Linear", linear);
        if (withConv) {
            CONVS.forEach(kind -> rules.put(kind, conv));
        }
        return rules;
    }

    /** The three broken samplers with the configurations each must fail; every other row it runs must pass. */
    public static List<DemoSampler> broken() {
        return List.of(
                new DemoSampler(LINEAR_BATCH_FIRST, "a Linear sampler that takes dimension 0 as the batch",
                        linearBatchFirst(), name -> name.contains(LayerMatrix.TIME_FIRST)),
                new DemoSampler(CONV_IGNORES_GROUPS, "a conv sampler that leaves out the layer's groups",
                        convIgnoresGroups(), name -> name.contains("groups=")),
                new DemoSampler(KEEPS_LAST_USE, "a sampler that keeps only the last use of a module used twice",
                        keepsLastUse(), name -> name.endsWith(LayerMatrix.USED_TWICE)));
    }

    /** {@value #HOOKS}: registered for {@code --engine}. */
    public static final class HooksProvider implements GradSamplerProvider {
        @Override
        public String name() {
            return HOOKS;
        }

        @Override
        public String description() {
            return "demo: a correct hooks-style sampler (Linear, Conv1d/2d/3d) on psg4j's layer capture";
        }

        @Override
        public GradSampler create(SamplerOptions options) {
            return hooks();
        }
    }

    /** {@value #LINEAR_BATCH_FIRST}: registered for {@code --engine}. */
    public static final class LinearBatchFirstProvider implements GradSamplerProvider {
        @Override
        public String name() {
            return LINEAR_BATCH_FIRST;
        }

        @Override
        public String description() {
            return "demo, deliberately broken: a Linear sampler that assumes batch-first data (wrong on time-first input)";
        }

        @Override
        public GradSampler create(SamplerOptions options) {
            return linearBatchFirst();
        }
    }

    /** {@value #CONV_IGNORES_GROUPS}: registered for {@code --engine}. */
    public static final class ConvIgnoresGroupsProvider implements GradSamplerProvider {
        @Override
        public String name() {
            return CONV_IGNORES_GROUPS;
        }

        @Override
        public String description() {
            return "demo, deliberately broken: a conv sampler that ignores groups (wrong on grouped and depthwise conv)";
        }

        @Override
        public GradSampler create(SamplerOptions options) {
            return convIgnoresGroups();
        }
    }

    /** {@value #KEEPS_LAST_USE}: registered for {@code --engine}. */
    public static final class KeepsLastUseProvider implements GradSamplerProvider {
        @Override
        public String name() {
            return KEEPS_LAST_USE;
        }

        @Override
        public String description() {
            return "demo, deliberately broken: keeps only the last use of a module used twice (wrong on shared layers)";
        }

        @Override
        public GradSampler create(SamplerOptions options) {
            return keepsLastUse();
        }
    }
}
