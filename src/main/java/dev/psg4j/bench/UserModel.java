package dev.psg4j.bench;

import dev.psg4j.BadInputException;
import dev.psg4j.check.Loss;
import dev.psg4j.engine.TensorContainer;
import dev.psg4j.engine.TensorFile;
import dev.psg4j.engine.TensorMaps;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;

import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.IValueVector;
import org.bytedeco.pytorch.JitModule;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * The user's own model for {@code psg4j bench --model M.pt --input X.pt [--target Y.pt --loss L]}:
 * a TorchScript file and the torch.save of a batch (a tensor, or a tuple/list of them, one per
 * forward argument), with optional targets. At batch size B every method runs on the first B
 * samples of the input (and targets) along {@code batchDim}; a B larger than the file's batch is
 * refused (the batch is never tiled: repeated samples would flatter a sampler that caches per sample).
 *
 * @param model    the TorchScript file
 * @param input    the batch file
 * @param target   the targets file, or null (l1 against zeros, sum)
 * @param loss     l1, mse, cross_entropy or sum
 * @param batchDim the batch dimension of every input and target
 */
public record UserModel(Path model, Path input, Path target, String loss, int batchDim) {
    public UserModel {
        BadInputException.requireNonNull(model, "model", "the TorchScript file (--model M.pt)");
        BadInputException.requireNonNull(input, "input", "the batch file (--input X.pt)");
        Loss.named(Objects.requireNonNullElse(loss, "l1"));
        loss = Objects.requireNonNullElse(loss, "l1");
        if (batchDim < 0) {
            throw new BadInputException("--batch-dim must be 0 or more, got " + batchDim);
        }
    }

    /** The name its rows are reported under: the model file's name. */
    public String name() {
        return model.getFileName().toString();
    }

    /** How many samples the input file holds along {@link #batchDim}: the largest B the sweep takes. */
    public long samples() {
        List<Tensor> inputs = tensors(input, "--input");
        Tensor first = inputs.get(0);
        if (first.dim() <= batchDim) {
            throw new BadInputException("--input " + input + " has " + first.dim() + " dimension(s), so no batch "
                    + "dimension " + batchDim + ": give --batch-dim below " + first.dim());
        }
        return first.size(batchDim);
    }

    /** Refuses a B above the input's batch, in one line naming both. */
    public void requireSamples(long batch, long samples) {
        if (batch > samples) {
            throw new BadInputException("--batch " + batch + " is more than the " + samples + " samples of --input "
                    + input + ": give batch sizes up to " + samples + " (each B takes the first B samples), or save a "
                    + "larger batch");
        }
    }

    /** The model on the first {@code batch} samples of the input and targets, all on {@code device}. */
    Workload open(long batch, String device) {
        requireSamples(batch, samples());
        List<Tensor> inputs = onDevice(first(tensors(input, "--input"), batch), device);
        List<Tensor> targets = target == null ? List.of() : onDevice(first(tensors(target, "--target"), batch), device);
        Model m = Models.torchScript(model, device);
        JitModule module = m.torchScriptModule().orElseThrow();
        return new Workload(name(), m, inputs, targets, Loss.named(loss), batchDim, in -> forward(module, in), m);
    }

    private List<Tensor> first(List<Tensor> tensors, long batch) {
        return tensors.stream().map(t -> {
            if (t.dim() <= batchDim || t.size(batchDim) < batch) {
                throw new BadInputException("a tensor of " + input + " or " + target + " holds fewer than " + batch
                        + " samples along --batch-dim " + batchDim + ": save inputs and targets of one batch size");
            }
            return t.narrow(batchDim, 0, batch).contiguous();
        }).toList();
    }

    private static List<Tensor> onDevice(List<Tensor> tensors, String device) {
        if (device.equals("cpu")) {
            return tensors;
        }
        try (org.bytedeco.pytorch.Device target = new org.bytedeco.pytorch.Device(device)) {
            return tensors.stream().map(t -> t.to(target, t.scalar_type())).toList();
        }
    }

    private static Tensor forward(JitModule module, List<Tensor> inputs) {
        IValueVector args = new IValueVector(inputs.stream().map(IValue::new).toArray(IValue[]::new));
        return module.forward(args).toTensor();
    }

    /** The tensors of a batch file: a tensor, or a tuple/list of tensors (a dict has no argument order). */
    private static List<Tensor> tensors(Path file, String option) {
        TensorFile saved = TensorMaps.read(file);
        if (saved.container() == TensorContainer.DICT || saved.entries().isEmpty()) {
            throw new BadInputException(option + " " + file + " holds " + saved.describe()
                    + ": give torch.save of a tensor, or of a tuple/list of tensors");
        }
        return saved.tensors();
    }
}
