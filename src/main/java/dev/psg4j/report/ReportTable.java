package dev.psg4j.report;

import picocli.CommandLine.Help.Ansi;
import picocli.CommandLine.Help.Column;
import picocli.CommandLine.Help.Column.Overflow;
import picocli.CommandLine.Help.TextTable;

import java.util.Locale;

/** Renders a {@link CheckReport} as text, with picocli's table. */
final class ReportTable {
    private static final int FAILURES_SHOWN = 12;

    private ReportTable() {
    }

    static String render(CheckReport report) {
        if (report.reductions().isEmpty()) {
            return "";  // nothing was compared (a probe stopped the check)
        }
        String[] header = {"reduction", "parameter", "verdict", "max abs err", "max rel err", "worst sample",
                "bad samples"};
        int[] widths = {11, 26, 13, 13, 13, 14, 13};
        for (ReductionReport r : report.reductions()) {
            for (ParamReport p : r.params()) {
                widths[1] = Math.max(widths[1], Math.min(60, p.name().length() + 2));
            }
        }
        Column[] columns = new Column[widths.length];
        for (int c = 0; c < widths.length; c++) {
            columns[c] = new Column(widths[c], 1, Overflow.WRAP);
        }
        TextTable table = TextTable.forColumns(Ansi.OFF, columns);
        table.addRowValues(header);
        for (ReductionReport r : report.reductions()) {
            for (ParamReport p : r.params()) {
                table.addRowValues(r.reduction(), p.name(), verdict(p), number(p.maxAbsErr()), number(p.maxRelErr()),
                        p.worstSample() == null ? "-" : p.worstSample().toString(),
                        p.status().equals("compared") && !CheckReport.CLIPPED_SUM.equals(report.candidate())  // a sum has no samples
                                ? p.badSamples().size() + " of " + report.batchSize() : "-");
            }
        }
        return table.toString();
    }

    static String summary(CheckReport report) {
        StringBuilder out = new StringBuilder();
        out.append(report.passed() ? "PASSED" : "FAILED").append(": engine ").append(report.engine())
                .append(", B = ").append(report.batchSize()).append(", loss ").append(report.loss())
                .append(", atol ").append(number(report.atol())).append(", rtol ").append(number(report.rtol()))
                .append(", device ").append(report.device());
        if (report.sketch() != null) {
            SketchSummary sketch = report.sketch();
            out.append(", mode sketch (").append(sketch.projections()).append(" projections, seed ").append(sketch.seed())
                    .append(", ").append(sketch.exactParams()).append(" parameter(s) decided exactly)");
        }
        out.append('\n');
        int shown = 0;
        for (Failure f : report.failures()) {
            if (shown++ == FAILURES_SHOWN) {
                out.append("  ... and ").append(report.failures().size() - FAILURES_SHOWN).append(" more failures\n");
                break;
            }
            out.append("  - ").append(f.message()).append('\n');
        }
        for (Diagnosis d : report.diagnoses()) {
            out.append("  * ").append(d.message()).append('\n');
        }
        return out.toString();
    }

    /** The verdict column: ok (ok (sketch) when a sketch passed it), MISMATCH, NON-FINITE, MISSING, EXTRA or WRONG SHAPE. */
    static String verdict(ParamReport p) {
        if (p.passed()) {
            return "pass".equals(p.sketchZone()) ? "ok (sketch)" : "ok";
        }
        return switch (p.status()) {
            case "missing" -> "MISSING";
            case "extra" -> "EXTRA";
            case "shape" -> "WRONG SHAPE";
            default -> p.nonFinite() ? "NON-FINITE" : "MISMATCH";
        };
    }

    static String number(Double v) {
        return v == null ? "-" : String.format(Locale.ROOT, "%.3g", v);
    }
}
