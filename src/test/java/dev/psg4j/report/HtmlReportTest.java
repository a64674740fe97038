package dev.psg4j.report;

import com.fasterxml.jackson.databind.JsonNode;

import dev.psg4j.Fixtures;
import dev.psg4j.check.Loss;
import dev.psg4j.check.PerSampleCheck;
import dev.psg4j.check.Reduction;
import dev.psg4j.engine.Engines;
import dev.psg4j.model.Model;
import dev.psg4j.model.Models;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The HTML report as a browser shows it: rendered in headless Chromium (installed with apt-get on a
 * bare Debian CI machine), the dumped DOM must hold the verdict table and the charts ECharts drew.
 */
class HtmlReportTest {
    @TempDir
    static Path work;
    private static HeadlessChromium chromium;

    @BeforeAll
    static void browser() throws Exception {
        chromium = HeadlessChromium.findOrInstall(work);
    }

    /** mlp with bug_swapped.pt (reduction sum): samples 1 and 3 of 2.weight swapped. */
    private static CheckReport swapped() {
        JsonNode entry = Fixtures.entry("mlp");
        try (Model model = Models.torchScript(Fixtures.file("mlp", "model.pt"));
             PerSampleCheck check = PerSampleCheck.builder().model(model).inputs(Fixtures.inputs("mlp"))
                     .targets(Fixtures.targets("mlp")).batchDim(entry.get("batch_dim").asInt())
                     .loss(Loss.named(entry.get("loss").asText())).reduction(Reduction.SUM).build()) {
            return check.run(Engines.precomputed("bug_swapped.pt", Reduction.SUM,
                    Fixtures.grads("mlp", "bug_swapped.pt")));
        }
    }

    @Test
    void heatMapChartAndVerdictTableRender() throws Exception {
        CheckReport report = swapped();
        assertFalse(report.passed());
        Path page = work.resolve("swapped.html");
        report.writeHtml(page);
        String dom = chromium.dumpDom(page, work);

        String row = row(dom, "sum", "2.weight");
        assertTrue(row.contains(">MISMATCH<"), row);
        assertTrue(row.contains("2 of 6: 1, 3"), row);
        assertTrue(row.startsWith("<tr class=\"bad\""), row);
        for (String ok : List.of("0.weight", "0.bias", "2.bias")) {
            String r = row(dom, "sum", ok);
            assertTrue(r.contains(">ok<") && r.contains("0 of 6"), r);
        }
        assertTrue(dom.contains("sum / 2.weight / sample 1: 52 of 64 elements differ"), "failure list");
        assertTrue(dom.contains("<span class=\"verdict bad\">FAILED</span>"), "summary");

        // The heat map: ECharts added its SVG inside the container, with one cell per sample x parameter,
        // the parameter names on the axis and the two bad cells of 2.weight outlined.
        String heatmap = chart(dom, "heatmap-0", "norms-0");
        assertTrue(heatmap.contains("data-rendered=\"true\""), "ECharts did not finish the heat map:\n" + heatmap);
        assertTrue(heatmap.contains("<svg"), heatmap);
        int cells = count(heatmap, "<path");
        assertTrue(cells >= 4 * 6, "only " + cells + " paths in the heat map:\n" + heatmap);
        for (String name : List.of("0.weight", "0.bias", "2.weight", "2.bias")) {
            assertTrue(heatmap.contains(">" + name + "</text>"), "no axis label " + name + ":\n" + heatmap);
        }
        List<String> outlined = matches(heatmap, "<path [^>]*stroke=\"#000\" stroke-width=\"2\"[^>]*>");
        assertEquals(2, outlined.size(), "bad cells outlined:\n" + heatmap);
        assertTrue(outlined.stream().allMatch(c -> c.contains("fill=\"#b30000\"")), "bad cells dark red: " + outlined);

        // The per-sample chart: six bars, two of them red, and the tolerance line.
        String norms = chart(dom, "norms-0", "</section>");
        assertTrue(norms.contains("data-rendered=\"true\""), "ECharts did not finish the norm chart:\n" + norms);
        assertTrue(norms.contains("<svg"), norms);
        assertEquals(2, count(norms, "fill=\"#b30000\""), "red bars of the bad samples:\n" + norms);
        assertTrue(norms.contains(">tolerance</text>"), norms);
    }

    @Test
    void textIsEscapedAndChartsStillRender() throws Exception {
        String nasty = "w</script><b id=\"injected\">&amp;'x";
        ParamReport p = new ParamReport(nasty, List.of(2L, 3L), false, 2.0, 4.0, 1, List.of(1), false, dev.psg4j.report.ParamStatus.COMPARED,
                List.of(2L, 3L), 100.0, List.of(0.0, 2.0), List.of(0.0, 4.0), List.of(0.0, 100.0), List.of());
        CheckReport report = new CheckReport(false, "<i>engine</i>", 2, "cpu", "l1", 1e-5, 1e-4,
                List.of(new ReductionReport("sum", false, List.of(p))),
                List.of(new Failure("sum", nasty, 1, FailureKind.VALUE, "sum / " + nasty + " / sample 1: <bad>")),
                List.of(new Diagnosis(DiagnosisKind.SCALED, nasty, List.of(1), "a \"diagnosis\" & <more>")));
        String html = HtmlReport.render(report);
        assertFalse(html.contains("<b id=\"injected\">") || html.contains("<i>engine</i>") || html.contains("<bad>"));
        Path page = work.resolve("escaped.html");
        Files.writeString(page, html);
        String dom = chromium.dumpDom(page, work);

        assertFalse(dom.contains("<b id=\"injected\">"), "markup from the report's text was parsed");
        assertFalse(dom.contains("<i>engine</i>"), "markup from the report's text was parsed");
        assertTrue(dom.contains("sample 1: &lt;bad&gt;"), "failure message shown as text");
        assertTrue(dom.contains("a \"diagnosis\" &amp; &lt;more&gt;"), "diagnosis shown as text");
        String heatmap = chart(dom, "heatmap-0", "norms-0");
        assertTrue(heatmap.contains("data-rendered=\"true\""), "the embedded JSON broke the charts:\n" + heatmap);
        assertTrue(heatmap.contains("w&lt;/script&gt;&lt;b id=\"injected\"&gt;&amp;amp;'x</text>"),
                "the parameter name is an axis label, as text:\n" + heatmap);
    }

    /** The {@code <tr>} of the verdict table for one reduction and parameter. */
    private static String row(String dom, String reduction, String param) {
        int table = dom.indexOf("<table id=\"verdicts\">");
        assertTrue(table >= 0, "no <table id=\"verdicts\"> in the page");
        Matcher m = Pattern.compile("<tr class=\"\\w+\" data-reduction=\"" + Pattern.quote(reduction)
                + "\" data-param=\"" + Pattern.quote(param) + "\">.*?</tr>", Pattern.DOTALL).matcher(dom);
        assertTrue(m.find(table), "no row for " + reduction + " / " + param + " in the verdict table");
        return m.group();
    }

    /** The DOM from the chart container {@code id} to the next landmark. */
    private static String chart(String dom, String id, String until) {
        int start = dom.indexOf("id=\"" + id + "\"");
        assertTrue(start >= 0, "no chart container " + id);
        int end = dom.indexOf(until, start + 1);
        return dom.substring(start, end < 0 ? dom.length() : end);
    }

    private static List<String> matches(String s, String regex) {
        return Pattern.compile(regex).matcher(s).results().map(m -> m.group()).toList();
    }

    private static int count(String s, String what) {
        int n = 0;
        for (int i = s.indexOf(what); i >= 0; i = s.indexOf(what, i + what.length())) {
            n++;
        }
        return n;
    }
}
