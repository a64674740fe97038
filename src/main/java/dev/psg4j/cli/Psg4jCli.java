package dev.psg4j.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.IVersionProvider;

import java.io.PrintWriter;

/**
 * {@code psg4j}: verify per-sample gradients from the command line (DESIGN §4).
 *
 * <p>Exit status: 0 every check passed; 1 a mismatch or violation was found; 2 bad usage or bad
 * input, with one line on stderr saying what and how to fix it. The subcommands map psg4j's
 * exceptions to exit 2 themselves, so {@code new CommandLine(new Psg4jCli()).execute(args)} keeps
 * that contract; {@link #newCommandLine()} also makes picocli's own usage errors one line.
 */
@Command(name = "psg4j", mixinStandardHelpOptions = true, versionProvider = Psg4jCli.Version.class,
        description = "Verifies per-sample gradients (DP-SGD) against a microbatch reference, on LibTorch.",
        subcommands = {CheckCommand.class, ProbeCommand.class, BenchCommand.class, SoakCommand.class, DemoCommand.class, EnginesCommand.class, ConformCommand.class, CommandLine.HelpCommand.class},
        exitCodeListHeading = "%nExit status:%n",
        exitCodeList = {"0:every check passed", "1:a mismatch or a violation was found",
                "2:bad usage or bad input (one line on stderr says what and how to fix it)"})
public final class Psg4jCli {
    /** Exit status: every check passed. */
    public static final int PASSED = 0;
    /** Exit status: a mismatch or violation was found. */
    public static final int FAILED = 1;
    /** Exit status: bad usage or bad input. */
    public static final int BAD_INPUT = 2;

    public static void main(String[] args) {
        int status;
        try {
            status = newCommandLine().execute(args);
        } catch (Throwable t) {
            System.err.println("internal error: " + t);
            status = BAD_INPUT;
        }
        System.exit(status);
    }

    /** The command line as {@code main} runs it: usage errors are one line on stderr, exit 2. */
    public static CommandLine newCommandLine() {
        CommandLine cli = new CommandLine(new Psg4jCli());
        cli.setParameterExceptionHandler((ex, args) -> {
            CommandLine cmd = ex.getCommandLine();
            PrintWriter err = cmd.getErr();
            String name = cmd.getCommandSpec().qualifiedName();
            err.println(name + ": " + Failures.oneLine(ex.getMessage()) + " (see '" + name + " --help')");
            err.flush();
            return BAD_INPUT;
        });
        cli.setExecutionExceptionHandler((ex, cmd, parseResult) -> {
            PrintWriter err = cmd.getErr();
            err.println(Failures.describe(cmd.getCommandSpec().qualifiedName(), ex));
            err.flush();
            return BAD_INPUT;
        });
        return cli;
    }

    /** {@code --version}: psg4j's version (from the jar's manifest) and the runtime it uses. */
    static final class Version implements IVersionProvider {
        @Override
        public String[] getVersion() {
            String version = Psg4jCli.class.getPackage().getImplementationVersion();
            return new String[] {"psg4j " + (version == null ? "(development build)" : version),
                    "LibTorch 2.10 through bytedeco's JavaCPP presets; Java " + Runtime.version()};
        }
    }
}
