package dev.psg4j.cli;

import dev.psg4j.BadInputException;
import dev.psg4j.engine.TensorContainer;
import dev.psg4j.engine.TensorFile;
import dev.psg4j.engine.TensorMaps;

import org.bytedeco.pytorch.Tensor;

import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

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
        return new ArrayList<>(saved.tensors());
    }
}
