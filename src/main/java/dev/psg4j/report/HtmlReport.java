package dev.psg4j.report;

import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/**
 * A {@link CheckReport} as one self-contained HTML file: the summary, the failures, the diagnoses,
 * the verdict table ({@code <table id="verdicts">}, as the console prints it) and, per reduction,
 * a heat map of the relative error per sample × parameter and a bar chart of each sample's largest
 * tolerance ratio. The charts are drawn by Apache ECharts, inlined ({@link HtmlPages}) with the
 * report's JSON, so the file needs neither a network nor other files.
 */
public final class HtmlReport {
    /** Above this many heat-map cells ECharts draws on a canvas instead of SVG. */
    private static final int SVG_CELLS = 20_000;
    private static final int SAMPLES_LISTED = 20;

    private HtmlReport() {
    }

    /** Writes {@link #render}'s page to {@code file} (UTF-8). */
    public static void write(CheckReport report, Path file) {
        HtmlPages.write(file, render(report), "HTML report");
    }

    /** The whole page. */
    public static String render(CheckReport report) {
        String verdict = report.passed() ? "PASSED" : "FAILED";
        StringBuilder h = new StringBuilder(1 << 20);
        h.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
                .append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
                .append("<meta name=\"generator\" content=\"psg4j; charts: Apache ECharts ")
                .append(esc(HtmlPages.echartsVersion()))
                .append("\">\n<title>psg4j check: ").append(verdict).append(" (engine ").append(esc(report.engine()))
                .append(")</title>\n<style>\n").append(resource("report.css")).append("</style>\n</head>\n<body>\n");
        summary(h, report, verdict);
        failures(h, report);
        diagnoses(h, report);
        verdictTable(h, report);
        charts(h, report);
        h.append("<noscript><p>The charts need JavaScript; the tables above hold the same verdicts.</p></noscript>\n");
        h.append("<script type=\"application/json\" id=\"psg4j-report\">").append(HtmlPages.scriptSafe(report.toJson()))
                .append("</script>\n");
        h.append("<script>\n").append(HtmlPages.echartsScript()).append("\n</script>\n");
        h.append("<script>\n").append(HtmlPages.inlineable(resource("report.js"), "report.js")).append("</script>\n");
        h.append("</body>\n</html>\n");
        return h.toString();
    }

    private static void summary(StringBuilder h, CheckReport r, String verdict) {
        String reductions = r.reductions().stream().map(ReductionReport::reduction).collect(Collectors.joining(", "));
        h.append("<header id=\"summary\">\n<h1>psg4j check: <span class=\"verdict ")
                .append(r.passed() ? "ok" : "bad").append("\">").append(verdict).append("</span></h1>\n<dl>\n");
        item(h, "engine", r.engine());
        item(h, "batch size (B)", Long.toString(r.batchSize()));
        item(h, "loss", r.loss());
        item(h, "reductions", reductions.isEmpty() ? "none compared: the probes stopped the check (see Diagnoses)"
                : reductions);
        item(h, "atol", ReportTable.number(r.atol()));
        item(h, "rtol", ReportTable.number(r.rtol()));
        if (r.tolerance() != null) {
            item(h, "tolerance rule", r.tolerance());
        }
        if (r.referencePrecision() != null) {
            item(h, "reference precision", r.referencePrecision());
        }
        if (r.rounding() != null) {
            item(h, "rounding level", "measured against " + r.rounding().measuredAgainst() + " on samples "
                    + r.rounding().samples() + "; the rounding rule adds " + ReportTable.number(r.rounding().multiple())
                    + " times it to each element's tolerance");
        }
        item(h, "device", r.device());
        if (r.referenceRoute() != null) {
            item(h, "reference route", r.referenceRoute());
        }
        item(h, "mode", r.mode() == null ? "exact" : r.mode());
        if (r.sketch() != null) {
            SketchSummary k = r.sketch();
            item(h, "sketch", k.projections() + " projections, seed " + k.seed() + ", reference in "
                    + k.referencePrecision() + " (" + k.precision() + " asked, " + k.doubleParams()
                    + " parameter(s) left to double by float), " + k.exactParams() + " parameter(s) decided exactly (the others "
                    + "passed by the sketch have no per-sample errors)");
        }
        h.append("</dl>\n<p class=\"note\">").append(criterion(r))
                .append(" NaN or Inf never matches. Relative errors divide by max(|reference|, atol).</p>\n")
                .append(candidateNote(r))
                .append("</header>\n");
    }

    /** How an element of per-sample gradients was judged. */
    private static String criterion(CheckReport r) {
        if ("rounding".equals(r.tolerance())) {
            return "An element matches when |candidate − reference| ≤ atol + rtol·|reference| + c·ρ, ρ the reference's"
                    + " own rounding level for that parameter and sample (the table's rounding level is its largest)"
                    + " and c the multiple above.";
        }
        return "An element matches when |candidate − reference| ≤ atol + rtol·|reference| (as torch.allclose).";
    }

    // ---- norms-only and clipped-sum candidates ----
    /** What a norms or clipped-sum report compared, and its tolerance ("" for per-sample gradients). */
    private static String candidateNote(CheckReport r) {
        if (CheckReport.NORMS.equals(r.candidate())) {
            return "<p class=\"note\">Candidate: per-sample gradient norms; a sample's norm matches when |candidate − "
                    + "reference| ≤ atol + rtol·reference (the parameter \"(whole gradient)\" is sqrt(Σ_p ‖g_p‖²)).</p>\n";
        }
        if (CheckReport.CLIPPED_SUM.equals(r.candidate()) && r.clipping() != null) {
            return "<p class=\"note\">Candidate: a clipped sum Σᵢ fᵢ·gᵢ (" + esc(r.clipping().mode()) + " clipping, C = "
                    + ReportTable.number(r.clipping().maxGradNorm()) + ", fᵢ = min(1, C / (‖gᵢ‖ + 1e-6))); an element "
                    + "matches when |candidate − reference| ≤ atol + rtol·Σᵢ|fᵢ·gᵢ|. A sum has no per-sample errors: "
                    + "the charts stay empty.</p>\n";
        }
        return "";
    }
    // ---- end of the norms block ----

    private static void item(StringBuilder h, String term, String value) {
        h.append("<dt>").append(esc(term)).append("</dt><dd>").append(esc(value)).append("</dd>\n");
    }

    private static void failures(StringBuilder h, CheckReport r) {
        h.append("<section id=\"failures\">\n<h2>Failures (").append(r.failures().size()).append(")</h2>\n");
        if (r.failures().isEmpty()) {
            h.append("<p>None.</p>\n</section>\n");
            return;
        }
        h.append("<ol>\n");
        for (Failure f : r.failures()) {
            h.append("<li><span class=\"kind\">").append(esc(f.kind().label())).append("</span> ")
                    .append(esc(f.message())).append("</li>\n");
        }
        h.append("</ol>\n<p class=\"note\">Per parameter the list may stop after its first sample failures;"
                + " bad_samples in the JSON report (embedded in this page) lists every bad sample.</p>\n</section>\n");
    }

    private static void diagnoses(StringBuilder h, CheckReport r) {
        h.append("<section id=\"diagnoses\">\n<h2>Diagnoses (").append(r.diagnoses().size()).append(")</h2>\n");
        if (r.diagnoses().isEmpty()) {
            h.append(r.failures().isEmpty() ? "<p>None.</p>\n</section>\n" : "<p>None: no likely cause was recognized"
                    + " (the probes found nothing, and the failing values are none of a constant factor, samples"
                    + " permuted, one gradient for every sample, a transposed matrix or zero samples).</p>\n</section>\n");
            return;
        }
        h.append("<table>\n<thead><tr><th>kind</th><th>parameter</th><th>samples</th><th>message</th></tr></thead>\n"
                + "<tbody>\n");
        for (Diagnosis d : r.diagnoses()) {
            h.append("<tr><td>").append(esc(d.kind().label())).append("</td><td>").append(esc(d.param())).append("</td><td>")
                    .append(esc(samples(d.samples()))).append("</td><td>").append(esc(d.message()))
                    .append("</td></tr>\n");
        }
        h.append("</tbody>\n</table>\n</section>\n");
    }

    private static void verdictTable(StringBuilder h, CheckReport r) {
        h.append("<section>\n<h2>Verdicts</h2>\n<table id=\"verdicts\">\n<thead><tr><th>reduction</th><th>parameter</th>"
                + "<th>verdict</th><th>max abs err</th><th>max rel err</th><th>worst sample</th><th>rounding level</th>"
                + "<th>bad samples</th></tr></thead>\n<tbody>\n");
        for (ReductionReport red : r.reductions()) {
            for (ParamReport p : red.params()) {
                String bad = p.status() == ParamStatus.COMPARED
                        ? p.badSamples().size() + " of " + r.batchSize()
                        + (p.badSamples().isEmpty() ? "" : ": " + samples(p.badSamples()))
                        : "-";
                h.append("<tr class=\"").append(p.passed() ? "ok" : "bad").append("\" data-reduction=\"")
                        .append(esc(red.reduction())).append("\" data-param=\"").append(esc(p.name())).append("\">")
                        .append("<td>").append(esc(red.reduction())).append("</td><td>").append(esc(p.name()))
                        .append("</td><td class=\"verdict\">").append(esc(ReportTable.verdict(p)))
                        .append("</td><td class=\"num\">").append(ReportTable.number(p.maxAbsErr()))
                        .append("</td><td class=\"num\">").append(ReportTable.number(p.maxRelErr()))
                        .append("</td><td class=\"num\">").append(p.worstSample() == null ? "-" : p.worstSample())
                        .append("</td><td class=\"num\">").append(ReportTable.number(p.roundingLevel()))
                        .append("</td><td class=\"samples\">").append(esc(bad)).append("</td></tr>\n");
            }
        }
        h.append("</tbody>\n</table>\n</section>\n");
    }

    private static void charts(StringBuilder h, CheckReport r) {
        for (int i = 0; i < r.reductions().size(); i++) {
            ReductionReport red = r.reductions().get(i);
            String name = esc(red.reduction());
            long cells = red.params().size() * Math.max(1, r.batchSize());
            int height = 110 + 26 * Math.max(2, red.params().size()) + (r.batchSize() > 64 ? 40 : 0);
            // outlines of bad cells: thinner as cells get narrower, none where they would hide the cells
            int border = r.batchSize() <= 100 ? 2 : r.batchSize() <= 400 ? 1 : 0;
            h.append("<section class=\"reduction\">\n<h2>Reduction ").append(name).append(": ")
                    .append(red.passed() ? "passed" : "FAILED").append("</h2>\n");

            h.append("<figure>\n<div class=\"chart heatmap\" id=\"heatmap-").append(i).append("\" data-reduction=\"")
                    .append(name).append("\" data-renderer=\"").append(cells <= SVG_CELLS ? "svg" : "canvas")
                    .append("\" data-border=\"").append(border).append("\" style=\"height:").append(height)
                    .append("px\"></div>\n<figcaption>Relative error per sample × parameter (").append(name)
                    .append("): each cell is the sample's largest |candidate − reference| / max(|reference|, atol)"
                            + " over the parameter's elements, colored by decades around rtol (a log scale clipped at"
                            + " 10·rtol: everything at or above it is dark red); purple: the sample has NaN/Inf"
                            + " elements. ")
                    .append(border > 0 ? "A black border marks a sample outside tolerance (a bad sample); "
                            : "The cells are too narrow for outlines: the table lists the bad samples; ")
                    .append("blank rows were not compared (missing, extra or wrong shape).</figcaption>\n"
                            + "</figure>\n");

            h.append("<figure>\n<div class=\"chart norms\" id=\"norms-").append(i).append("\" data-reduction=\"")
                    .append(name).append("\" data-renderer=\"").append(r.batchSize() <= SVG_CELLS ? "svg" : "canvas")
                    .append("\" style=\"height:300px\"></div>\n<figcaption>Per-sample error norm (").append(name)
                    .append("): for each sample, the maximum over parameters of its tolerance ratio"
                            + " max |candidate − reference| / (atol + rtol·|reference|), on a log scale; above 1 (the"
                            + " dashed line) the sample is outside tolerance. Red bars are bad samples; purple"
                            + " full-height bars are samples with NaN/Inf elements (the ratio counts finite elements"
                            + " only); ratios below 1e-4 are drawn at 1e-4.</figcaption>\n</figure>\n</section>\n");
        }
    }

    private static String samples(List<Integer> samples) {
        if (samples == null || samples.isEmpty()) {
            return "-";
        }
        String listed = samples.stream().limit(SAMPLES_LISTED).map(String::valueOf).collect(Collectors.joining(", "));
        return samples.size() > SAMPLES_LISTED ? listed + ", … (" + samples.size() + " in all)" : listed;
    }

    static String esc(String s) {
        return HtmlPages.esc(s);
    }

    private static String resource(String name) {
        return HtmlPages.resource(HtmlReport.class, name);
    }
}
