package dev.psg4j.bench;

import dev.psg4j.report.HtmlPages;
import dev.psg4j.report.HtmlReport;

import java.util.Locale;
import java.util.OptionalDouble;

/**
 * A {@link BenchResult} as one self-contained HTML page: the settings, per model a chart of the
 * median ms per call against B for every method (both axes logarithmic, so a method linear in B is
 * a line of slope 1 and a constant ratio between methods a constant gap), and the table of every
 * timing. Styled like the check report, drawn by Apache ECharts inlined with the result's JSON
 * ({@link HtmlPages}), so the file needs neither a network nor other files.
 */
public final class BenchPage {
    private BenchPage() {
    }

    /** The whole page. */
    public static String render(BenchResult result) {
        StringBuilder h = new StringBuilder(1 << 20);
        h.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
                .append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
                .append("<meta name=\"generator\" content=\"psg4j; charts: Apache ECharts ")
                .append(HtmlPages.esc(HtmlPages.echartsVersion())).append("\">\n<title>psg4j bench: ")
                .append(HtmlPages.esc(String.join(", ", result.suites()))).append("</title>\n<style>\n")
                .append(HtmlPages.resource(HtmlReport.class, "report.css")).append("</style>\n</head>\n<body>\n");
        summary(h, result);
        charts(h, result);
        timings(h, result);
        h.append("<noscript><p>The charts need JavaScript; the table above holds the same timings.</p></noscript>\n");
        h.append("<script type=\"application/json\" id=\"psg4j-bench\">").append(HtmlPages.scriptSafe(result.toJson()))
                .append("</script>\n");
        h.append("<script>\n").append(HtmlPages.echartsScript()).append("\n</script>\n");
        h.append("<script>\n").append(HtmlPages.inlineable(HtmlPages.resource(BenchPage.class, "bench.js"), "bench.js"))
                .append("</script>\n");
        h.append("</body>\n</html>\n");
        return h.toString();
    }

    private static void summary(StringBuilder h, BenchResult r) {
        BenchResult.Settings s = r.settings();
        h.append("<header id=\"summary\">\n<h1>psg4j bench</h1>\n<dl>\n");
        item(h, "models", r.models().equals(BenchResult.BUILT_IN) ? "built in Java (C++ frontend), seeded"
                : "weights and inputs from " + r.models());
        item(h, "batch sizes (B)", join(r.batches()));
        item(h, "threads", join(r.threadCounts()));
        item(h, "methods", String.join(", ", r.methods().stream().map(r::label).toList()));
        if (r.engine() != null) {
            item(h, "engine", r.engine() + " (verified against the microbatch reference at every B)");
        }
        item(h, "device", r.device());
        item(h, "JMH", String.format(Locale.ROOT, "sample time, %d fork(s), %d × %d ms warm-up, %d × %d ms measured",
                s.forks(), s.warmups(), s.iterationMillis(), s.iterations(), s.iterationMillis()));
        h.append("</dl>\n<p class=\"note\">Each figure is the median (p50) time of one call over every call JMH"
                + " timed; score ± error is JMH's mean with the half-width of its 99.9% confidence interval (no"
                + " error where JMH had too few calls for one)."
                + " Loss l1 against zeros; the engines and the backward use reduction sum, the checks both"
                + " reductions (a model of your own: its loss). The samplers (vmap and the engine) are checked once"
                + " per B against the microbatch reference (exact, reduction sum) outside the timed region: a WRONG"
                + " sampler's points are drawn as red crosses, an unsupported one has none. Peak extra memory is the"
                + " peak resident set over one call minus the resident set before it (free native memory returned to"
                + " the system first), measured in the bench's own JVM.</p>\n</header>\n");
    }

    private static void charts(StringBuilder h, BenchResult r) {
        for (String suite : r.suites()) {
            String name = HtmlPages.esc(suite);
            h.append("<section class=\"suite\">\n<h2>").append(name).append("</h2>\n<figure>\n")
                    .append("<div class=\"chart bench\" id=\"chart-").append(name).append("\" data-suite=\"")
                    .append(name).append("\" style=\"height:420px\"></div>\n<figcaption>")
                    .append(name).append(": median ms per call against B, one line per method")
                    .append(r.threadCounts().size() > 1 ? " and thread count" : "")
                    .append("; both axes logarithmic.</figcaption>\n</figure>\n<figure>\n")
                    .append("<div class=\"chart bench-memory\" id=\"memory-").append(name).append("\" data-suite=\"")
                    .append(name).append("\" style=\"height:360px\"></div>\n<figcaption>").append(name)
                    .append(": peak extra MiB of one call against B, one line per method; both axes logarithmic.")
                    .append("</figcaption>\n</figure>\n</section>\n");
        }
    }

    private static void timings(StringBuilder h, BenchResult r) {
        h.append("<section>\n<h2>Timings</h2>\n<table id=\"timings\">\n<thead><tr><th>model</th><th>method</th>"
                + "<th>B</th><th>threads</th><th>median ms</th><th>score ± error ms</th><th>samples</th>"
                + "<th>verified</th><th>peak extra MiB</th></tr></thead>\n"
                + "<tbody>\n");
        for (BenchResult.Row row : r.rows()) {
            BenchResult.Timing t = row.timing();
            Verification v = row.verification();
            h.append("<tr").append(v == null ? "" : " data-verification=\"" + v.status().name().toLowerCase(Locale.ROOT)
                    + "\"").append(" data-suite=\"").append(HtmlPages.esc(row.suite())).append("\" data-method=\"")
                    .append(row.method().label()).append("\" data-batch=\"").append(row.batch()).append("\">")
                    .append("<td>").append(HtmlPages.esc(row.suite())).append("</td><td>")
                    .append(HtmlPages.esc(r.label(row.method())))
                    .append("</td><td class=\"num\">").append(row.batch()).append("</td><td class=\"num\">")
                    .append(row.threads()).append("</td><td class=\"num\">")
                    .append(t == null ? "-" : ms(t.medianMs()))
                    .append("</td><td class=\"num\">").append(t == null ? "-" : ms(t.scoreMs()))
                    .append(t != null && Double.isFinite(t.scoreErrorMs()) ? " ± " + ms(t.scoreErrorMs()) : "")
                    .append("</td><td class=\"num\">").append(t == null ? 0 : t.samples()).append("</td><td>")
                    .append(v == null ? "" : HtmlPages.esc(v.passed() ? "yes" : v.status().mark() + ": " + v.detail()))
                    .append("</td><td class=\"num\">").append(row.peakExtraBytes() == null ? "-"
                            : String.format(Locale.ROOT, "%.1f", row.peakExtraBytes() / (1024.0 * 1024.0)))
                    .append("</td></tr>\n");
        }
        h.append("</tbody>\n</table>\n</section>\n");
    }

    private static String ms(double v) {
        return Double.isFinite(v) ? BenchResult.format(OptionalDouble.of(v), "%s") : "-";
    }

    private static void item(StringBuilder h, String term, String value) {
        h.append("<dt>").append(HtmlPages.esc(term)).append("</dt><dd>").append(HtmlPages.esc(value)).append("</dd>\n");
    }

    private static String join(java.util.List<?> values) {
        return String.join(", ", values.stream().map(String::valueOf).toList());
    }
}
