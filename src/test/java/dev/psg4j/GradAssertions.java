package dev.psg4j;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Assertions on name → per-sample-gradient maps. */
public final class GradAssertions {
    private GradAssertions() {
    }

    /** Same names in the same order, and every tensor allclose(actual, expected, rtol, atol). */
    public static void assertClose(Map<String, Tensor> expected, Map<String, Tensor> actual, double atol,
                                   double rtol, String what) {
        assertEquals(List.copyOf(expected.keySet()), List.copyOf(actual.keySet()), what + ": parameter names");
        for (String name : expected.keySet()) {
            Tensor e = expected.get(name);
            Tensor a = actual.get(name);
            assertEquals(Arrays.toString(e.sizes().vec().get()), Arrays.toString(a.sizes().vec().get()),
                    () -> what + ": shape of " + name);
            assertTrue(torch.allclose(a, e.to(a.scalar_type()), rtol, atol, false), () -> what + ": " + name
                    + " max abs diff " + a.sub(e.to(a.scalar_type())).abs().max().item_double());
        }
    }
}
