package dev.psg4j.report;


import java.util.List;
import java.util.Locale;

/** Renders a {@link ConformanceReport} as text, with the same table helper as {@link ReportTable}. */
final class ConformanceTable {
    private ConformanceTable() {
    }

    static String render(ConformanceReport report) {
        return TextTables.render(report.rows(), List.of(
                TextTables.column("configuration", ConformanceRow::configuration),
                TextTables.column("reduction", ConformanceRow::reduction),
                TextTables.column("B", r -> Long.toString(r.batchSize())),
                TextTables.column("verdict", ConformanceTable::verdict),
                TextTables.column("max abs err", r -> ReportTable.number(r.maxAbsErr())),
                TextTables.column("tol ratio", r -> ReportTable.number(r.maxTolRatio())),
                TextTables.column("parameter", r -> r.param() == null ? "-" : r.param()),
                TextTables.column("sample", r -> r.sample() == null ? "-" : r.sample().toString())));
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
