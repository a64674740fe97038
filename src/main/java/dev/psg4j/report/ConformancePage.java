package dev.psg4j.report;

import java.nio.file.Path;
import java.util.Locale;

/**
 * A {@link ConformanceReport} as one self-contained HTML page in the check report's style (its
 * CSS): the summary, the rows that failed or errored, and the whole table
 * ({@code <table id="conformance">}, one row per configuration × reduction × B, as the console
 * prints it), with the report's JSON embedded. No scripts, so the page needs nothing else.
 */
public final class ConformancePage {
    private ConformancePage() {
    }

    /** Writes {@link #render}'s page to {@code file} (UTF-8). */
    public static void write(ConformanceReport report, Path file) {
        HtmlPages.write(file, render(report), "HTML conformance report");
    }

    /** The whole page. */
    public static String render(ConformanceReport report) {
        String verdict = report.passed() ? "CONFORMS" : "DOES NOT CONFORM";
        StringBuilder h = new StringBuilder(1 << 16);
        h.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
                .append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
                .append("<meta name=\"generator\" content=\"psg4j\">\n<title>psg4j conform: ").append(verdict)
                .append(" (engine ").append(esc(report.engine())).append(")</title>\n<style>\n")
                .append(HtmlPages.resource(HtmlReport.class, "report.css")).append("</style>\n</head>\n<body>\n");
        summary(h, report, verdict);
        problems(h, report);
        table(h, report);
        h.append("<script type=\"application/json\" id=\"psg4j-conformance\">")
                .append(HtmlPages.scriptSafe(report.toJson())).append("</script>\n</body>\n</html>\n");
        return h.toString();
    }

    private static void summary(StringBuilder h, ConformanceReport r, String verdict) {
        ConformanceReport.Totals t = r.totals();
        h.append("<header id=\"summary\">\n<h1>psg4j conform: <span class=\"verdict ").append(r.passed() ? "ok" : "bad")
                .append("\">").append(verdict).append("</span></h1>\n<dl>\n");
        item(h, "engine", r.engine());
        item(h, "rows", t.rows() + " (" + t.passed() + " passed, " + t.failed() + " failed, " + t.error() + " error, "
                + t.skipped() + " skipped)");
        item(h, "batch sizes (B)", r.batchSizes().toString());
        item(h, "reductions", String.join(", ", r.reductions()));
        item(h, "atol", ReportTable.number(r.atol()));
        item(h, "rtol", ReportTable.number(r.rtol()));
        item(h, "run time", String.format(Locale.ROOT, "%.1f s", r.seconds()));
        h.append("</dl>\n<p class=\"note\">Each row checks the sampler's per-sample gradients of one configuration of"
                + " psg4j's layer matrix, at one batch size, for one reduction, against the microbatch reference"
                + " (each sample alone). Skipped rows hold a layer kind the sampler does not claim (supportsLayer);"
                + " they are neither passed nor failed. Tol ratio: the worst parameter's largest"
                + " |candidate − reference| / (atol + rtol·|reference|); above 1 is outside tolerance.</p>\n</header>\n");
    }

    private static void problems(StringBuilder h, ConformanceReport r) {
        int bad = r.totals().failed() + r.totals().error();
        h.append("<section id=\"failures\">\n<h2>Failures and errors (").append(bad).append(")</h2>\n");
        if (bad == 0) {
            h.append("<p>None.</p>\n</section>\n");
            return;
        }
        h.append("<ol>\n");
        for (ConformanceRow row : r.rows()) {
            if (row.verdict() == ConformanceVerdict.FAILED || row.verdict() == ConformanceVerdict.ERROR) {
                h.append("<li><span class=\"kind\">").append(esc(row.verdict() == ConformanceVerdict.ERROR ? "error"
                        : row.failureKind() == null ? "failed" : row.failureKind().label())).append("</span> ")
                        .append(esc(row.label())).append(": ").append(esc(row.message())).append("</li>\n");
            }
        }
        h.append("</ol>\n</section>\n");
    }

    private static void table(StringBuilder h, ConformanceReport r) {
        h.append("<section>\n<h2>Rows</h2>\n<table id=\"conformance\">\n<thead><tr><th>configuration</th>"
                + "<th>reduction</th><th>B</th><th>verdict</th><th>max abs err</th><th>max rel err</th>"
                + "<th>tol ratio</th><th>parameter</th><th>sample</th><th>layer kinds</th></tr></thead>\n<tbody>\n");
        for (ConformanceRow row : r.rows()) {
            String css = switch (row.verdict()) {
                case PASSED -> "ok";
                case SKIPPED -> "skipped";
                default -> "bad";
            };
            h.append("<tr class=\"").append(css).append("\"><td>").append(esc(row.configuration())).append("</td><td>")
                    .append(esc(row.reduction())).append("</td><td class=\"num\">").append(row.batchSize())
                    .append("</td><td class=\"verdict\"").append(row.message() == null ? ""
                            : " title=\"" + esc(row.message()) + "\"").append('>')
                    .append(esc(ConformanceTable.verdict(row))).append("</td><td class=\"num\">")
                    .append(ReportTable.number(row.maxAbsErr())).append("</td><td class=\"num\">")
                    .append(ReportTable.number(row.maxRelErr())).append("</td><td class=\"num\">")
                    .append(ReportTable.number(row.maxTolRatio())).append("</td><td>")
                    .append(esc(row.param() == null ? "-" : row.param())).append("</td><td class=\"num\">")
                    .append(row.sample() == null ? "-" : row.sample()).append("</td><td>")
                    .append(esc(String.join(", ", row.layerKinds()))).append("</td></tr>\n");
        }
        h.append("</tbody>\n</table>\n</section>\n");
    }

    private static void item(StringBuilder h, String term, String value) {
        h.append("<dt>").append(esc(term)).append("</dt><dd>").append(esc(value)).append("</dd>\n");
    }

    private static String esc(String s) {
        return HtmlPages.esc(s);
    }
}
