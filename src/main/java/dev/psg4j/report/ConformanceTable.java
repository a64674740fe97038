package dev.psg4j.report;

import picocli.CommandLine.Help.Ansi;
import picocli.CommandLine.Help.Column;
import picocli.CommandLine.Help.Column.Overflow;
import picocli.CommandLine.Help.TextTable;

import java.util.Locale;

/** Renders a {@link ConformanceReport} as text, with the same table helper as {@link ReportTable}. */
final class ConformanceTable {
    private ConformanceTable() {
    }

    static String render(ConformanceReport report) {
        String[] header = {"configuration", "reduction", "B", "verdict", "max abs err", "tol ratio", "parameter",
                "sample"};
        int[] widths = {40, 11, 5, 9, 13, 11, 16, 8};
        for (ConformanceRow r : report.rows()) {
            widths[0] = Math.max(widths[0], Math.min(90, r.configuration().length() + 2));
            if (r.param() != null) {
                widths[6] = Math.max(widths[6], Math.min(40, r.param().length() + 2));
            }
        }
        Column[] columns = new Column[widths.length];
        for (int c = 0; c < widths.length; c++) {
            columns[c] = new Column(widths[c], 1, Overflow.WRAP);
        }
        TextTable table = TextTable.forColumns(Ansi.OFF, columns);
        table.addRowValues(header);
        for (ConformanceRow r : report.rows()) {
            table.addRowValues(r.configuration(), r.reduction(), Long.toString(r.batchSize()), verdict(r),
                    ReportTable.number(r.maxAbsErr()), ReportTable.number(r.maxTolRatio()),
                    r.param() == null ? "-" : r.param(), r.sample() == null ? "-" : r.sample().toString());
        }
        return table.toString();
    }

    static String summary(ConformanceReport report) {
        ConformanceReport.Totals t = report.totals();
        StringBuilder out = new StringBuilder();
        out.append(report.passed() ? "CONFORMS" : "DOES NOT CONFORM").append(": engine ").append(report.engine())
                .append(", ").append(t.rows()).append(" rows: ").append(t.passed()).append(" passed, ")
                .append(t.failed()).append(" failed, ").append(t.error()).append(" error, ").append(t.skipped())
                .append(" skipped (layer kinds the sampler does not claim); ")
                .append(String.format(Locale.ROOT, "%.1f s", report.seconds())).append('\n');
        if (t.ran() == 0) {
            out.append("  no row ran: the sampler claims none of the configurations' layer kinds\n");
        }
        for (ConformanceRow r : report.rows()) {
            if (r.verdict() == ConformanceVerdict.FAILED || r.verdict() == ConformanceVerdict.ERROR) {
                out.append("  - ").append(verdict(r)).append(' ').append(r.label()).append(": ").append(r.message())
                        .append('\n');
            }
        }
        return out.toString();
    }

    /** The verdict column: ok, FAILED, ERROR or skipped. */
    static String verdict(ConformanceRow r) {
        return switch (r.verdict()) {
            case PASSED -> "ok";
            case FAILED -> "FAILED";
            case ERROR -> "ERROR";
            case SKIPPED -> "skipped";
        };
    }
}
