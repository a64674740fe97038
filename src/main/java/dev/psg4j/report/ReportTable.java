package dev.psg4j.report;


import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** Renders a {@link CheckReport} as text. */
final class ReportTable {
    private static final int FAILURES_SHOWN = 12;

    private ReportTable() {
    }

    static String render(CheckReport report) {
        if (report.reductions().isEmpty()) {
            return "";  // nothing was compared (a probe stopped the check)
        }
        List<Row> rows = new ArrayList<>();
        for (ReductionReport r : report.reductions()) {
            r.params().forEach(p -> rows.add(new Row(r.reduction(), p)));
        }
        return TextTables.render(rows, List.of(
                TextTables.column("reduction", Row::reduction),
                TextTables.column("parameter", row -> row.param().name()),
                TextTables.column("verdict", row -> verdict(row.param())),
                TextTables.column("max abs err", row -> number(row.param().maxAbsErr())),
                TextTables.column("max rel err", row -> number(row.param().maxRelErr())),
                TextTables.column("worst sample", row -> row.param().worstSample() == null ? "-"
                        : row.param().worstSample().toString()),
                TextTables.column("rounding level", row -> number(row.param().roundingLevel())),
                TextTables.column("bad samples", row -> row.param().status() == ParamStatus.COMPARED
                        && !CheckReport.CLIPPED_SUM.equals(report.candidate())  // a sum has no samples
                        ? row.param().badSamples().size() + " of " + report.batchSize() : "-")));
    }

    private record Row(String reduction, ParamReport param) {
    }

    static String summary(CheckReport report) {
        StringBuilder out = new StringBuilder();
        out.append(report.passed() ? "PASSED" : "FAILED").append(": engine ").append(report.engine())
                .append(", B = ").append(report.batchSize()).append(", loss ").append(report.loss())
                .append(", atol ").append(number(report.atol())).append(", rtol ").append(number(report.rtol()));
        if (report.tolerance() != null) {
            out.append(", tolerance ").append(report.tolerance());
            if ("rounding".equals(report.tolerance()) && report.rounding() != null) {
                out.append(" (+ ").append(multiple(report.rounding().multiple())).append(" x ")
                        .append(report.referencePrecision()).append(" rounding level)");
            }
        }
        out.append(", device ").append(report.device());
        if (report.sketch() != null) {
            SketchSummary sketch = report.sketch();
            out.append(", mode sketch (").append(sketch.projections()).append(" projections, seed ").append(sketch.seed())
                    .append(", reference in ").append(sketch.referencePrecision()).append(", ")
                    .append(sketch.exactParams()).append(" parameter(s) decided exactly)");
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
            return p.sketchZone() == SketchZone.PASS ? "ok (sketch)" : "ok";
        }
        return switch (p.status()) {
            case MISSING -> "MISSING";
            case EXTRA -> "EXTRA";
            case SHAPE -> "WRONG SHAPE";
            case COMPARED -> p.nonFinite() ? "NON-FINITE" : "MISMATCH";
        };
    }

    private static String multiple(double c) {
        return c == Math.rint(c) ? Long.toString((long) c) : number(c);
    }

    static String number(Double v) {
        return v == null ? "-" : String.format(Locale.ROOT, "%.3g", v);
    }
}
