package dev.psg4j.report;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Headless Chromium for tests that render pages: finds {@code chromium} on the PATH or, as root on
 * Debian, installs it once with apt-get (Debian's package, without recommends, plus fonts-liberation
 * so charts have a font). Never skips: a test that needs a browser fails with what to install.
 * Shared by the tests of every HTML page (check report, bench page).
 */
public final class HeadlessChromium {
    private static final List<String> NAMES = List.of("chromium", "chromium-browser");
    private static final Duration APT_TIMEOUT = Duration.ofMinutes(10);
    private static final Duration RENDER_TIMEOUT = Duration.ofMinutes(2);

    private final Path executable;

    private HeadlessChromium(Path executable) {
        this.executable = executable;
    }

    public Path executable() {
        return executable;
    }

    /** The browser on the PATH, installed first with apt-get when missing and we are root. */
    public static HeadlessChromium findOrInstall(Path workDir) throws IOException, InterruptedException {
        Optional<Path> found = onPath();
        if (found.isPresent()) {
            return new HeadlessChromium(found.get());
        }
        String why;
        if (!isRoot()) {
            why = "not root, so it cannot be installed here";
        } else if (onPath("apt-get").isEmpty()) {
            why = "apt-get is missing, so it cannot be installed here";
        } else {
            Path log = workDir.resolve("apt.log");
            List<String> env = List.of("DEBIAN_FRONTEND=noninteractive");
            run(List.of("apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-q"), env, log);
            run(List.of("apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-q",
                    "--no-install-recommends", "chromium", "fonts-liberation"), env, log);
            found = onPath();
            if (found.isPresent()) {
                return new HeadlessChromium(found.get());
            }
            why = "apt-get install chromium ran but left no chromium on the PATH";
        }
        throw new IllegalStateException("headless Chromium is needed to render the HTML report and was not found on "
                + "the PATH (" + String.join(", ", NAMES) + "): " + why + ". Install it, e.g. as root on Debian: "
                + "apt-get update && apt-get install -y chromium");
    }

    /** Loads {@code page} and returns the DOM after its scripts ran (virtual time, so no real waiting). */
    public String dumpDom(Path page, Path workDir) throws IOException, InterruptedException {
        Path profile = Files.createTempDirectory(workDir, "chromium-profile");
        Path out = workDir.resolve("dom.html");
        Path err = workDir.resolve("chromium.log");
        List<String> command = List.of(executable.toString(), "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--user-data-dir=" + profile, "--virtual-time-budget=5000", "--dump-dom",
                page.toAbsolutePath().toUri().toString());
        Process p = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        if (!p.waitFor(RENDER_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
            throw new IllegalStateException("chromium did not finish within " + RENDER_TIMEOUT + ":\n" + tail(err));
        }
        String dom = Files.readString(out, StandardCharsets.UTF_8);
        if (p.exitValue() != 0 || dom.isBlank()) {
            throw new IllegalStateException("chromium exited with " + p.exitValue() + " and "
                    + dom.length() + " characters of DOM:\n" + tail(err));
        }
        return dom;
    }

    private static Optional<Path> onPath(String name) {
        String path = System.getenv("PATH");
        if (path == null) {
            return Optional.empty();
        }
        for (String dir : path.split(File.pathSeparator)) {
            Path candidate = Path.of(dir.isEmpty() ? "." : dir, name);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                return Optional.of(candidate);
            }
        }
        return Optional.empty();
    }

    private static Optional<Path> onPath() {
        for (String name : NAMES) {
            Optional<Path> p = onPath(name);
            if (p.isPresent()) {
                return p;
            }
        }
        return Optional.empty();
    }

    private static boolean isRoot() throws IOException, InterruptedException {
        Process p = new ProcessBuilder("id", "-u").redirectErrorStream(true).start();
        String uid = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        return p.waitFor() == 0 && uid.equals("0");
    }

    private static void run(List<String> command, List<String> env, Path log) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        for (String kv : env) {
            String[] parts = kv.split("=", 2);
            pb.environment().put(parts[0], parts[1]);
        }
        Process p = pb.start();
        if (!p.waitFor(APT_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
            throw new IllegalStateException(String.join(" ", command) + " did not finish within " + APT_TIMEOUT
                    + ":\n" + tail(log));
        }
        if (p.exitValue() != 0) {
            throw new IllegalStateException("installing headless Chromium failed: " + String.join(" ", command)
                    + " exited with " + p.exitValue() + ":\n" + tail(log)
                    + "\nInstall it by hand, e.g. apt-get update && apt-get install -y chromium");
        }
    }

    private static String tail(Path file) throws IOException {
        if (!Files.exists(file)) {
            return "(no output)";
        }
        List<String> lines = new String(Files.readAllBytes(file), StandardCharsets.UTF_8).lines().toList();
        return String.join("\n", new ArrayList<>(lines.subList(Math.max(0, lines.size() - 30), lines.size())));
    }
}
