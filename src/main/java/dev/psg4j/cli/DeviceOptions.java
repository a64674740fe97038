package dev.psg4j.cli;

import dev.psg4j.BadInputException;
import dev.psg4j.check.Devices;
import dev.psg4j.engine.TensorFile;
import dev.psg4j.engine.TensorMaps;

import org.bytedeco.pytorch.Tensor;

import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code --device}, shared by the commands that run a model ({@code check}, {@code probe},
 * {@code bench}, {@code conform}). The CLI owns what it loads, so it loads the model, the batch and
 * any candidate file onto this device.
 */
final class DeviceOptions {
    @Option(names = "--device", paramLabel = "DEVICE", defaultValue = "cpu",
            description = "cpu, cuda (= cuda:0) or cuda:N: where the model, the batch and the candidates are loaded "
                    + "and the check runs (CUDA needs psg4j built with -Pgpu and a visible device); default ${DEFAULT-VALUE}")
    String device;

    /** The canonical device ("cpu", "cuda:0"); a bad one is a one-line BadInputException (exit 2). */
    String canonical() {
        try {
            return Devices.canonical(device);
        } catch (BadInputException e) {
            throw new BadInputException("--device " + device + ": " + e.getMessage(), e);
        }
    }

    /** {@code tensors} (handed over) on {@code device}: the ones elsewhere copied there and closed. */
    static List<Tensor> onDevice(List<Tensor> tensors, String device) {
        Map<String, Tensor> keyed = new LinkedHashMap<>();
        for (int k = 0; k < tensors.size(); k++) {
            keyed.put(Integer.toString(k), tensors.get(k));
        }
        return new ArrayList<>(Devices.moveAll(keyed, device).values());
    }

    /** The file's tensors on {@code device} (a candidate file lands on the check's device). */
    static TensorFile read(Path file, String device) {
        TensorFile saved = TensorMaps.read(file);
        return new TensorFile(saved.container(), Devices.moveAll(saved.entries(), device));
    }
}
