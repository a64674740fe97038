package dev.psg4j.bench;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.IterationParams;
import org.openjdk.jmh.results.BenchmarkResult;
import org.openjdk.jmh.results.IterationResult;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.format.OutputFormat;

import java.io.IOException;
import java.io.PrintStream;
import java.util.Collection;

/**
 * One progress bar over a whole {@code psg4j bench} run: a step per model checked before JMH
 * starts, then a step per JMH iteration (warm-up or measured, of every fork), so the bar's ETA
 * follows the time JMH is told to spend. Off ({@link #NONE}) unless a stream is given: the CLI
 * gives stderr only when it is a terminal, so CI logs get no carriage-return lines.
 */
abstract class BenchProgress implements AutoCloseable {
    /** No bar: every call does nothing. */
    static final BenchProgress NONE = new BenchProgress() {
        @Override
        void step(String what) {
        }

        @Override
        void status(String what) {
        }

        @Override
        public void close() {
        }
    };

    /** A bar of {@code total} steps drawn on {@code out} (ASCII, so any terminal font shows it). */
    static BenchProgress on(PrintStream out, long total) {
        ProgressBar bar = new ProgressBarBuilder().setTaskName("bench").setInitialMax(total)
                .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(250).continuousUpdate()
                .setConsumer(new ConsoleProgressBarConsumer(out)).build();
        return new BenchProgress() {
            @Override
            void step(String what) {
                bar.setExtraMessage(what).step();
            }

            @Override
            void status(String what) {
                bar.setExtraMessage(what).refresh();
            }

            @Override
            public void close() {
                bar.close();
            }
        };
    }

    /** One step done; {@code what} is shown next to the bar (the benchmark now running). */
    abstract void step(String what);

    /** What starts now, shown next to the bar at once (a model set up at a large B takes a while before its step). */
    abstract void status(String what);

    @Override
    public abstract void close();

    /** The benchmark's name as the bar shows it: model/method B=.. t=.. */
    static String label(BenchmarkParams params) {
        String benchmark = params.getBenchmark();
        BenchMethod method = BenchMethod.ofBenchmark(benchmark.substring(benchmark.lastIndexOf('.') + 1));
        return params.getParam("suite") + "/" + method.label() + " B=" + params.getParam("batch")
                + " t=" + params.getParam("threads");
    }

    /** JMH's output format with every iteration also stepping the bar. */
    OutputFormat counting(OutputFormat jmh) {
        return new OutputFormat() {
            @Override
            public void iteration(BenchmarkParams benchParams, IterationParams params, int iteration) {
                jmh.iteration(benchParams, params, iteration);
            }

            @Override
            public void iterationResult(BenchmarkParams benchParams, IterationParams params, int iteration,
                                        IterationResult data) {
                jmh.iterationResult(benchParams, params, iteration, data);
                step(label(benchParams));
            }

            @Override
            public void startBenchmark(BenchmarkParams benchParams) {
                jmh.startBenchmark(benchParams);
            }

            @Override
            public void endBenchmark(BenchmarkResult result) {
                jmh.endBenchmark(result);
            }

            @Override
            public void startRun() {
                jmh.startRun();
            }

            @Override
            public void endRun(Collection<RunResult> result) {
                jmh.endRun(result);
            }

            @Override
            public void print(String s) {
                jmh.print(s);
            }

            @Override
            public void println(String s) {
                jmh.println(s);
            }

            @Override
            public void flush() {
                jmh.flush();
            }

            @Override
            public void close() {
                jmh.close();
            }

            @Override
            public void verbosePrintln(String s) {
                jmh.verbosePrintln(s);
            }

            @Override
            public void write(int b) {
                jmh.write(b);
            }

            @Override
            public void write(byte[] b) throws IOException {
                jmh.write(b);
            }
        };
    }
}
