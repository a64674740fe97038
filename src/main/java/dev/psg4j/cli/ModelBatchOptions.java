package dev.psg4j.cli;

import dev.psg4j.BadInputException;
import dev.psg4j.ModelExecutionException;
import dev.psg4j.UnsupportedModelException;
import dev.psg4j.engine.TensorContainer;
import dev.psg4j.engine.TensorFile;
import dev.psg4j.engine.TensorMaps;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;

import org.bytedeco.pytorch.Tensor;

import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/** The options naming the model and the batch, shared by the commands that run a model on one. */
final class ModelBatchOptions {
    @Option(names = "--model", required = true, paramLabel = "M.pt",
            description = "TorchScript module: torch.jit.script(model).save(path) or torch.jit.trace(...)")
    Path model;

    @Option(names = "--input", required = true, paramLabel = "X.pt",
            description = "torch.save of the batch: a tensor, or a tuple/list of tensors (one per forward argument)")
    Path input;

    @Option(names = "--batch-dim", paramLabel = "N", defaultValue = "0",
            description = "the batch dimension of every input (1 for time-first data); default ${DEFAULT-VALUE}")
    int batchDim;

    /** The model's inputs, in forward-argument order. */
    List<Tensor> inputs() {
        return batchTensors(input, "--input");
    }

    /** The model's inputs on {@code device} (the CLI owns what it loads, so it loads it there). */
    List<Tensor> inputs(String device) {
        return DeviceOptions.onDevice(inputs(), device);
    }

    /** The TorchScript model loaded onto {@code device}. */
    Model model(String device) {
        return Models.torchScript(model, device);
    }

    /**
     * The tensors of a batch file given with {@code option}, in file order: a tensor, or a
     * tuple/list of them. A dict is refused: it holds named tensors (a candidate's gradients, most
     * likely), whose order is no forward's argument order.
     */
    static List<Tensor> batchTensors(Path file, String option) {
        TensorFile saved = TensorMaps.read(file);
        if (saved.container() == TensorContainer.DICT) {
            throw new BadInputException(option + " " + file + " holds " + saved.describe() + " {name: tensor} (per-sample "
                    + "gradients, for --candidate?): give torch.save of a tensor, or of a tuple/list of tensors");
        }
        if (saved.entries().isEmpty()) {
            throw new BadInputException(option + " " + file + " holds " + saved.describe() + ": save at least one tensor");
        }
        return new ArrayList<>(saved.tensors());
    }

    /**
     * What to throw for {@code failure} of {@code model} on {@code inputs}: where an input's dtype
     * does not suit the model's floating-point parameters, a BadInputException saying so with the
     * remedy in the model's dtype and the model's own message; else {@code failure} itself. Only
     * after a failure: a model may convert its inputs itself.
     * <ul>
     * <li>a floating-point input of another dtype than the parameters (most often a float64 batch
     *     made from NumPy data for a float32 model);</li>
     * <li>an integer or bool input where the model's message is about dtypes (a float model given
     *     ints; an Embedding's token ids are integers and fail, if at all, for other reasons).</li>
     * </ul>
     */
    RuntimeException explainDtype(Model model, List<Tensor> inputs, ModelExecutionException failure) {
        Set<String> parameterTypes = new TreeSet<>();
        model.trainableParameters().values().stream().filter(Tensor::is_floating_point)
                .forEach(p -> parameterTypes.add(p.scalar_type().toString()));
        if (failure instanceof UnsupportedModelException || parameterTypes.size() != 1) {
            return failure;
        }
        String parameterType = parameterTypes.iterator().next();
        String cause = Failures.oneLine(failure.getMessage());
        for (int k = 0; k < inputs.size(); k++) {
            Tensor x = inputs.get(k);
            String inputType = x.scalar_type().toString();
            if (x.is_floating_point() && !inputType.equals(parameterType)) {
                return new BadInputException("--input " + input + ": input " + k + " is " + inputType
                        + " but the model's parameters are " + parameterType + ": save the batch in the model's dtype ("
                        + conversion("x", parameterType) + ") or the model in the batch's (" + conversion("model",
                        inputType) + ") (the model failed: " + cause + ")", failure);
            }
            if (!x.is_floating_point() && !x.is_complex() && aboutDtypes(cause)) {
                return new BadInputException("--input " + input + ": input " + k + " is " + inputType + " ("
                        + (inputType.equals("Bool") ? "booleans" : "integers") + ") but the model computes in "
                        + parameterType + ": save the batch as " + conversion("x", parameterType) + " (integer inputs "
                        + "suit a model that takes indices, such as an Embedding) (the model failed: " + cause + ")",
                        failure);
            }
        }
        return failure;
    }

    /**
     * What to throw for {@code failure}, the batch's refusal of the inputs and targets: where the
     * targets' batch dimension was not given ({@code targetBatchDim} null, so it is a nonzero
     * --batch-dim) and does not fit them, a BadInputException that says so in the options' names, with the dimension
     * that would fit; else {@code failure} itself (its message names the tensor and the shapes).
     */
    RuntimeException explainBatchDims(List<Tensor> inputs, List<Tensor> targets, Integer targetBatchDim,
                                      BadInputException failure) {
        // At --batch-dim 0 the targets' default is what anyone expects: a mismatch there is the data's.
        if (targetBatchDim != null || batchDim == 0 || inputs.isEmpty() || inputs.get(0).dim() == 0) {
            return failure;
        }
        Tensor first = inputs.get(0);
        int rank = (int) first.dim();
        if (batchDim < -rank || batchDim >= rank) {
            return failure;
        }
        int inputDim = batchDim < 0 ? batchDim + rank : batchDim;
        long samples = first.size(inputDim);
        for (int k = 0; k < targets.size(); k++) {
            Tensor t = targets.get(k);
            int targetRank = (int) t.dim();
            if (targetRank == 0) {
                return failure;
            }
            String target = "target " + k + " (shape " + shape(t) + ")";
            String own = " (the targets' batch dimension is --batch-dim unless --target-batch-dim gives theirs)";
            if (batchDim < -targetRank || batchDim >= targetRank) {
                return new BadInputException("--batch-dim " + batchDim + " is out of range for " + target + ", rank "
                        + targetRank + own + ": give --target-batch-dim " + fitting(t, samples, targetRank)
                        + " for the targets", failure);
            }
            int targetDim = batchDim < 0 ? batchDim + targetRank : batchDim;
            if (t.size(targetDim) != samples) {
                String inputsFix = dimensionOf(first, t.size(targetDim));
                return new BadInputException("--batch-dim " + batchDim + " takes dimension " + inputDim + " of input 0 "
                        + "(shape " + shape(first) + ") as the batch, " + samples + " samples, but dimension "
                        + targetDim + " of " + target + " holds " + t.size(targetDim) + own + ": "
                        + (inputsFix == null ? "" : "if the samples are along dimension " + inputsFix + " of input 0, "
                        + "give --batch-dim " + inputsFix + "; otherwise ")
                        + "give the targets' with --target-batch-dim " + fitting(t, samples, targetRank), failure);
            }
        }
        return failure;
    }

    /** The dimension of {@code t} of size {@code samples} when exactly one has it, else "N" (a placeholder for the user). */
    private static String fitting(Tensor t, long samples, int rank) {
        String found = dimensionOf(t, samples);
        return found != null ? found : "N (in [" + -rank + ", " + (rank - 1) + "])";
    }

    /** The one dimension of {@code t} with size {@code size}; null when none or several have it. */
    private static String dimensionOf(Tensor t, long size) {
        String found = null;
        for (int d = 0; d < t.dim(); d++) {
            if (t.size(d) == size) {
                if (found != null) {
                    return null;
                }
                found = Integer.toString(d);
            }
        }
        return found;
    }

    private static String shape(Tensor t) {
        StringBuilder out = new StringBuilder("[");
        for (int d = 0; d < t.dim(); d++) {
            out.append(d == 0 ? "" : ", ").append(t.size(d));
        }
        return out.append(']').toString();
    }

    /** Whether a model's error line is about mismatched or unsupported dtypes. */
    private static boolean aboutDtypes(String message) {
        String m = message.toLowerCase(java.util.Locale.ROOT);
        return m.contains("dtype") || m.contains("scalar type") || m.contains("not implemented for")
                || m.matches(".*\\btype \\(.*");
    }

    /** The Python call converting {@code what} to the dtype LibTorch names {@code scalarType}: x.float(), model.double(). */
    static String conversion(String what, String scalarType) {
        return switch (scalarType) {
            case "Float", "Double", "Half", "BFloat16" -> what + "." + scalarType.toLowerCase(java.util.Locale.ROOT) + "()";
            default -> what + ".to(torch." + scalarType.toLowerCase(java.util.Locale.ROOT) + ")";
        };
    }
}
