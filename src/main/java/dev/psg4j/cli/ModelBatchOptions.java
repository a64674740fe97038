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
     * What to throw for {@code failure} of {@code model} on {@code inputs}: where a floating-point
     * input has another dtype than the model's floating-point parameters (most often a float64
     * batch made from NumPy data for a float32 model), a BadInputException saying so, with the
     * model's own message; else {@code failure} itself. Only after a failure: a model may convert
     * its inputs itself.
     */
    RuntimeException explainDtype(Model model, List<Tensor> inputs, ModelExecutionException failure) {
        Set<String> parameterTypes = new TreeSet<>();
        model.trainableParameters().values().stream().filter(Tensor::is_floating_point)
                .forEach(p -> parameterTypes.add(p.scalar_type().toString()));
        if (failure instanceof UnsupportedModelException || parameterTypes.size() != 1) {
            return failure;
        }
        String parameterType = parameterTypes.iterator().next();
        for (int k = 0; k < inputs.size(); k++) {
            Tensor x = inputs.get(k);
            if (x.is_floating_point() && !x.scalar_type().toString().equals(parameterType)) {
                return new BadInputException("--input " + input + ": input " + k + " is " + x.scalar_type()
                        + " but the model's parameters are " + parameterType + ": save the batch in the model's "
                        + "dtype (x.float() for Float) or the model in the batch's (the model failed: "
                        + Failures.oneLine(failure.getMessage()) + ")", failure);
            }
        }
        return failure;
    }
}
