package dev.psg4j.check;

import dev.psg4j.BadInputException;

import org.bytedeco.pytorch.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/** What the precomputed norm and clipped-sum samplers share. */
final class Precomputed {
    private Precomputed() {
    }

    /** New handles onto {@code tensors} (the caller owns them), refusing another reduction than {@code given}. */
    static Map<String, Tensor> handles(String name, Reduction given, Reduction asked, String what,
                                       Map<String, Tensor> tensors) {
        if (asked != given) {
            throw new BadInputException("the candidate '" + name + "' holds " + what + " for reduction "
                    + given.label() + " only, but reduction " + asked.label() + " was asked: check one reduction "
                    + "(--reduction " + given.label() + ")");
        }
        Map<String, Tensor> out = new LinkedHashMap<>();
        tensors.forEach((k, t) -> out.put(k, t == null || t.isNull() ? t : new Tensor(t)));
        return out;
    }
}
