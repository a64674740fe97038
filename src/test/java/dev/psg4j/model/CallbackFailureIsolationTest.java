package dev.psg4j.model;

import dev.psg4j.check.Batch;
import dev.psg4j.check.Loss;
import dev.psg4j.check.Reduction;
import dev.psg4j.engine.Engines;

import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.SequentialImpl;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A Java callback's exception reaches the call whose work raised it, and no other. One function
 * model, and one Sequential holding a user's layer, are each shared by 4 threads whose calls
 * alternate between a batch the forward refuses (a distinct exception for each thread and round,
 * thrown on the native sample workers as well as on the calling thread) and a batch it runs. Every
 * refused call must rethrow one of the very exceptions its own callbacks threw, and every other
 * call must return its gradients.
 */
class CallbackFailureIsolationTest {
    private static final int THREADS = 4;
    private static final int ROUNDS = 30;
    private static final long B = 6;
    private static final long FEATURES = 3;
    private static final String MARKED = "psg4j.test.RefusesMarkedInput";

    /** What a forward throws for a refused sample: the code written into the sample's first column. */
    private static final class Refused extends RuntimeException {
        final long code;

        Refused(long code) {
            super("refused the input marked " + code);
            this.code = code;
        }
    }

    /** Every exception the forwards threw, by the code of the input that made them throw. */
    private static final Map<Long, Set<Refused>> THROWN = new ConcurrentHashMap<>();
    /** The threads the forwards ran on. */
    private static final Set<Thread> FORWARD_THREADS = ConcurrentHashMap.newKeySet();

    private int threadsBefore;

    @BeforeAll
    static void registerTheLayer() {
        if (!FrontendLayers.registered().contains(MARKED)) {
            FrontendLayers.register(MARKED, List.of("w"), (x, p) -> refusingMarked(x).mul(p.get("w")));
        }
    }

    @BeforeEach
    void twoSampleWorkersPerCall() {
        // The microbatch engine spreads its samples over the calling thread's intra-op count:
        // with 2, half of each call's forwards run on a native worker thread, not the caller's.
        threadsBefore = torch.get_num_threads();
        torch.set_num_threads(2);
    }

    @AfterEach
    void restoreThreads() {
        torch.set_num_threads(threadsBefore);
    }

    /** {@code x}, unless its first column holds a code (not 0): then a Refused exception of that code. */
    private static Tensor refusingMarked(Tensor x) {
        FORWARD_THREADS.add(Thread.currentThread());
        long code = Math.round(x.select(-1, 0).abs().max().item_double());
        if (code != 0) {
            Refused e = new Refused(code);
            THROWN.computeIfAbsent(code, k -> ConcurrentHashMap.newKeySet()).add(e);
            throw e;
        }
        return x;
    }

    @Test
    void eachCallOfASharedFunctionModelGetsTheExceptionItsOwnForwardThrew() throws Exception {
        torch.manual_seed(1);
        Tensor w = torch.randn(FEATURES).requires_grad_(true);
        try (Model model = Models.function("refuses marked inputs", Map.of("w", w),
                (inputs, p) -> refusingMarked(inputs.get(0)).mul(p.get("w")))) {
            assertEquals(List.of(), misattributed(model), "calls that did not get their own callbacks' outcome");
        }
    }

    @Test
    void eachCallOfASharedModelWithAUsersLayerGetsTheExceptionItsOwnLayerThrew() throws Exception {
        torch.manual_seed(2);
        SequentialImpl seq = new SequentialImpl();
        seq.push_back("marked", FrontendLayers.layer(MARKED, Map.of("w", torch.randn(FEATURES).requires_grad_(true))));
        seq.push_back("fc", new LinearImpl(FEATURES, 2));
        try (Model model = Models.module(seq)) {
            assertEquals(List.of(), misattributed(model), "calls that did not get their own callbacks' outcome");
        }
    }

    /**
     * Runs THREADS x ROUNDS microbatch calls on {@code model}, thread t's round r refusing its
     * batch when t + r is even; returns a line for each call whose outcome was not its own.
     */
    private static List<String> misattributed(Model model) throws Exception {
        FORWARD_THREADS.clear();
        List<String> wrong = Collections.synchronizedList(new ArrayList<>());
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try {
            List<Future<?>> running = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                int thread = t;
                running.add(pool.submit(() -> {
                    for (int round = 0; round < ROUNDS; round++) {
                        boolean refused = (thread + round) % 2 == 0;
                        long code = refused ? 1000L * (thread + 1) + round + 1 : 0;
                        String outcome = outcome(model, code);
                        if (outcome != null) {
                            wrong.add("thread " + thread + ", round " + round + " ("
                                    + (refused ? "input marked " + code : "a runnable input") + "): " + outcome);
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : running) {
                f.get(5, TimeUnit.MINUTES);
            }
        } finally {
            pool.shutdownNow();
        }
        assertTrue(FORWARD_THREADS.size() > THREADS,
                () -> "the forwards ran on the calling threads only: " + FORWARD_THREADS);
        if (wrong.isEmpty()) {
            return List.of();
        }
        List<String> shown = new ArrayList<>(List.of(wrong.size() + " of " + THREADS * ROUNDS + " calls, among them:"));
        shown.addAll(wrong.subList(0, Math.min(8, wrong.size())));
        return shown;
    }

    /** Null when the call's outcome is its own: the exception its callbacks threw, or gradients. */
    private static String outcome(Model model, long code) {
        Tensor x = torch.randn(B, FEATURES);
        x.select(1, 0).fill_(new Scalar(code));
        try (Batch batch = Batch.of(x)) {
            Map<String, Tensor> grads = Engines.microbatch().perSampleGradients(model, batch, Loss.L1, Reduction.SUM);
            boolean complete = grads.values().stream().allMatch(g -> g.size(0) == B);
            grads.values().forEach(Tensor::close);
            if (code != 0) {
                return "returned gradients where its forward threw";
            }
            return complete ? null : "returned gradients of the wrong batch size";
        } catch (Refused e) {
            if (e.code != code) {
                return "got the exception of another call's input (marked " + e.code + ")";
            }
            return THROWN.getOrDefault(code, Set.of()).contains(e) ? null : "got an exception no forward threw";
        } catch (RuntimeException e) {
            return "got " + e;
        } finally {
            x.close();
        }
    }
}
