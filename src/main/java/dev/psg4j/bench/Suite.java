package dev.psg4j.bench;

import dev.psg4j.BadInputException;
import dev.psg4j.engine.TensorMaps;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;

import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.Conv2dImpl;
import org.bytedeco.pytorch.EmbeddingImpl;
import org.bytedeco.pytorch.FlattenImpl;
import org.bytedeco.pytorch.GELUImpl;
import org.bytedeco.pytorch.JitModule;
import org.bytedeco.pytorch.LayerNormImpl;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.LongVector;
import org.bytedeco.pytorch.MaxPool2dImpl;
import org.bytedeco.pytorch.ReLUImpl;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * One model of the benchmark suite (DESIGN §7) with its batch: built in Java as a C++-frontend
 * {@code Sequential} at full size, with seeded weights and input, or with the weights and input
 * of the TorchScript model that {@code src/test/python/bench_python.py --export DIR} wrote, so
 * that Python runs on identical weights and inputs. The loss is always {@code l1} against zeros.
 *
 * <pre>
 * mlp  Linear(784,256)-ReLU-Linear(256,10)                                  x [B,784]
 * cnn  Conv2d(1,16,5)-ReLU-MaxPool2d(2)-Conv2d(16,32,5)-ReLU-MaxPool2d(2)
 *      -Flatten-Linear(512,10)                                              x [B,1,28,28]
 * seq  Linear(64,128)-LayerNorm(128)-GELU-Linear(128,64)                    x [B,16,64]
 * emb  Embedding(1000,64)-Flatten-Linear(512,10)                            x int64 [B,8] in [0,1000)
 * </pre>
 */
public final class Suite implements AutoCloseable {
    /** The suite's model names, in the order reports list them. */
    public static final List<String> NAMES = List.of("mlp", "cnn", "seq", "emb");

    /** The seed the Java-built models and inputs are drawn with. */
    public static final long SEED = 0;

    private final String name;
    private final Model model;
    private final Tensor input;
    private final UnaryOperator<Tensor> forward;

    private Suite(String name, Model model, Tensor input, UnaryOperator<Tensor> forward) {
        this.name = name;
        this.model = model;
        this.input = input;
        this.forward = forward;
    }

    /** The model {@code name} built in Java (seeded, full size) with a batch of {@code batch} samples. */
    public static Suite build(String name, long batch) {
        return build(name, batch, "cpu");
    }

    /**
     * As {@link #build(String, long)}, the module and the batch on {@code device} (a canonical
     * device): the weights are drawn on the CPU (the same as there) and moved.
     */
    public static Suite build(String name, long batch, String device) {
        checkName(name);
        if (batch < 1) {
            throw new BadInputException("the batch size must be at least 1, got " + batch);
        }
        torch.manual_seed(SEED);
        SequentialImpl seq = onDevice(sequential(name), device);
        return new Suite(name, Models.module(seq), onDevice(randomInput(name, batch), device), seq::forward);
    }

    /** {@code seq} moved onto {@code device} before any Model wraps it (the suite owns it). */
    private static SequentialImpl onDevice(SequentialImpl seq, String device) {
        if (!device.equals("cpu")) {
            try (org.bytedeco.pytorch.Device target = new org.bytedeco.pytorch.Device(device)) {
                seq.to(target, false);
            }
        }
        return seq;
    }

    private static Tensor onDevice(Tensor x, String device) {
        if (device.equals("cpu")) {
            return x;
        }
        try (org.bytedeco.pytorch.Device target = new org.bytedeco.pytorch.Device(device)) {
            return x.to(target, x.scalar_type());
        }
    }

    /** The model {@code name} built in Java with fresh (seeded by the caller) weights, in eval mode. */
    private static SequentialImpl sequential(String name) {
        SequentialImpl seq = new SequentialImpl();
        switch (name) {
            case "mlp" -> {
                seq.push_back("0", new LinearImpl(784, 256));
                seq.push_back("1", new ReLUImpl());
                seq.push_back("2", new LinearImpl(256, 10));
            }
            case "cnn" -> {
                seq.push_back("0", new Conv2dImpl(1, 16, new LongPointer(5L, 5L)));
                seq.push_back("1", new ReLUImpl());
                seq.push_back("2", Models.forSequential(new MaxPool2dImpl(new LongPointer(2L, 2L))));
                seq.push_back("3", new Conv2dImpl(16, 32, new LongPointer(5L, 5L)));
                seq.push_back("4", new ReLUImpl());
                seq.push_back("5", Models.forSequential(new MaxPool2dImpl(new LongPointer(2L, 2L))));
                seq.push_back("6", new FlattenImpl());
                seq.push_back("7", new LinearImpl(512, 10));
            }
            case "seq" -> {
                seq.push_back("0", new LinearImpl(64, 128));
                seq.push_back("1", new LayerNormImpl(new LongVector(new long[] {128})));
                seq.push_back("2", new GELUImpl());
                seq.push_back("3", new LinearImpl(128, 64));
            }
            default -> { // emb
                seq.push_back("0", new EmbeddingImpl(1000, 64));
                seq.push_back("1", new FlattenImpl());
                seq.push_back("2", new LinearImpl(512, 10));
            }
        }
        seq.eval();
        return seq;
    }

    private static Tensor randomInput(String name, long batch) {
        return switch (name) {
            case "mlp" -> torch.randn(batch, 784);
            case "cnn" -> torch.randn(batch, 1, 28, 28);
            case "seq" -> torch.randn(batch, 16, 64);
            default -> torch.randint(1000, new long[] {batch, 8});
        };
    }

    /**
     * The model {@code name} built in Java with the weights of {@code DIR/<name>.pt} (TorchScript,
     * as {@code bench_python.py --export DIR} wrote it) and the input {@code DIR/<name>_x.pt} (one
     * tensor, saved with torch.save).
     */
    public static Suite load(String name, Path dir) {
        return load(name, dir, null);
    }

    /**
     * As {@link #load(String, Path)}, on the input of {@code batch} samples: {@link #inputFile(Path, String, long)}
     * ({@code DIR/<name>_x_b<B>.pt}, as a sweep's export writes it, else {@code DIR/<name>_x.pt} if
     * that holds B samples); null takes {@code DIR/<name>_x.pt} whatever its batch.
     */
    public static Suite load(String name, Path dir, Long batch) {
        return load(name, dir, batch, "cpu");
    }

    /** As {@link #load(String, Path, Long)}, the module and the batch on {@code device} (a canonical device). */
    public static Suite load(String name, Path dir, Long batch, String device) {
        checkName(name);
        Path modelFile = modelFile(dir, name);
        Path inputFile = batch == null ? inputFile(dir, name) : inputFile(dir, name, batch);
        String export = "python src/test/python/bench_python.py --export " + dir
                + (batch == null ? "" : " --batch " + batch);
        for (Path file : List.of(modelFile, inputFile)) {
            if (!Files.isRegularFile(file)) {
                throw new BadInputException("--models " + dir + ": " + file + " does not exist; export the suite with "
                        + export);
            }
        }
        JitModule module = Models.loadTorchScript(modelFile);
        Map<String, Tensor> saved = TensorMaps.load(inputFile);
        if (saved.size() != 1 || !saved.containsKey("")) {
            throw new BadInputException(inputFile + " should hold one tensor (the batch), but holds " + saved.size()
                    + " entries " + saved.keySet() + "; export it with bench_python.py --export");
        }
        Tensor x = saved.get("");
        if (x.dim() < 1 || x.size(0) < 1) {
            throw new BadInputException(inputFile + " holds an empty batch; export it with bench_python.py --export");
        }
        if (batch != null && x.size(0) != batch) {
            throw new BadInputException(inputFile + " holds a batch of " + x.size(0) + ", not " + batch
                    + ": export the suite with " + export);
        }
        SequentialImpl seq = onDevice(sequential(name), device);
        Model model = Models.module(seq);
        try (Model exported = Models.torchScript(module)) {
            copyParameters(exported.trainableParameters(), model.trainableParameters(), modelFile);
        }
        return new Suite(name, model, onDevice(x, device), seq::forward);
    }

    /** Gives the Java-built model the exported weights, checking that names and shapes agree. */
    private static void copyParameters(Map<String, Tensor> exported, Map<String, Tensor> own, Path from) {
        if (!exported.keySet().equals(own.keySet())) {
            throw new BadInputException(from + " has parameters " + exported.keySet() + " but the suite model has "
                    + own.keySet() + "; export it with bench_python.py --export");
        }
        for (Map.Entry<String, Tensor> e : own.entrySet()) {
            Tensor source = exported.get(e.getKey());
            if (!Arrays.equals(source.sizes().vec().get(), e.getValue().sizes().vec().get())) {
                throw new BadInputException(from + ": parameter " + e.getKey() + " has another shape than the "
                        + "suite's; export it with bench_python.py --export");
            }
            e.getValue().detach().copy_(source);
        }
    }

    public static Path modelFile(Path dir, String name) {
        return dir.resolve(name + ".pt");
    }

    /** The input of a single-batch export: {@code DIR/<name>_x.pt}. */
    public static Path inputFile(Path dir, String name) {
        return dir.resolve(name + "_x.pt");
    }

    /**
     * The input of {@code batch} samples: {@code DIR/<name>_x_b<B>.pt} (one per B of a sweep's
     * export) where it exists, else the single-batch export's {@code DIR/<name>_x.pt}.
     */
    public static Path inputFile(Path dir, String name, long batch) {
        Path perBatch = dir.resolve(name + "_x_b" + batch + ".pt");
        return Files.isRegularFile(perBatch) ? perBatch : inputFile(dir, name);
    }

    /** The names of {@code spec}: one suite name, or {@code all}. */
    public static List<String> named(String spec) {
        String key = spec.toLowerCase(Locale.ROOT);
        if (key.equals("all")) {
            return NAMES;
        }
        checkName(key);
        return List.of(key);
    }

    private static void checkName(String name) {
        if (!NAMES.contains(name)) {
            throw new BadInputException("unknown suite '" + name + "': use one of " + String.join(", ", NAMES)
                    + " or all");
        }
    }

    public String name() {
        return name;
    }

    public Model model() {
        return model;
    }

    /** The batch, batch-first. */
    public Tensor input() {
        return input;
    }

    /** B, the number of samples. */
    public long batchSize() {
        return input.size(0);
    }

    /** The model's forward on a whole batch, with autograd recording. */
    public Tensor forward(Tensor x) {
        return forward.apply(x);
    }

    @Override
    public void close() {
        model.close();
    }
}
