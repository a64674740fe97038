package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;

import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/**
 * The result of running a grad sampler over the layer matrix ({@code psg4j conform}): one
 * {@link ConformanceRow} per configuration × batch size × reduction, the totals and the run time.
 * {@code passed} is true when at least one row ran and every row that ran passed (skipped rows
 * are neither). What {@code --json} writes, with stable field names.
 */
@JsonPropertyOrder({"schema_version", "passed", "engine", "batch_sizes", "reductions", "atol", "rtol", "totals",
        "seconds", "rows"})
public record ConformanceReport(
        @JsonProperty("schema_version") int schemaVersion,
        boolean passed,
        String engine,
        @JsonProperty("batch_sizes") List<Long> batchSizes,
        List<String> reductions,
        double atol,
        double rtol,
        Totals totals,
        double seconds,
        List<ConformanceRow> rows) {
    public static final int SCHEMA_VERSION = 1;
    /** Row counts by verdict. */
    @JsonPropertyOrder({"rows", "passed", "failed", "skipped", "error"})
    public record Totals(int rows, int passed, int failed, int skipped, int error) {
        public static Totals of(List<ConformanceRow> rows) {
            return new Totals(rows.size(), count(rows, ConformanceVerdict.PASSED), count(rows, ConformanceVerdict.FAILED),
                    count(rows, ConformanceVerdict.SKIPPED), count(rows, ConformanceVerdict.ERROR));
        }

        private static int count(List<ConformanceRow> rows, ConformanceVerdict verdict) {
            return (int) rows.stream().filter(r -> r.verdict() == verdict).count();
        }

        /** The rows that ran (not skipped). */
        public int ran() {
            return rows - skipped;
        }
    }

    public ConformanceReport {
        batchSizes = List.copyOf(batchSizes);
        reductions = List.copyOf(reductions);
        rows = List.copyOf(rows);
    }

    /** A report of the current schema; {@code passed} and the totals from the rows. */
    public static ConformanceReport of(String engine, List<Long> batchSizes, List<String> reductions, double atol,
                                       double rtol, double seconds, List<ConformanceRow> rows) {
        Totals totals = Totals.of(rows);
        boolean passed = totals.ran() > 0 && totals.failed() == 0 && totals.error() == 0;
        return new ConformanceReport(SCHEMA_VERSION, passed, engine, batchSizes, reductions, atol, rtol, totals, seconds,
                rows);
    }

    /** The rows with this verdict, in run order. */
    public List<ConformanceRow> rows(ConformanceVerdict verdict) {
        return rows.stream().filter(r -> r.verdict() == verdict).collect(Collectors.toList());
    }

    public static ConformanceReport fromJson(String json) {
        return ReportJson.read(json, ConformanceReport.class, "conformance report");
    }

    public String toJson() {
        return ReportJson.write(this);
    }

    public void writeJson(Path file) {
        ReportJson.write(this, file, "conformance report");
    }

    /** Writes a self-contained HTML page in the check report's style ({@link ConformancePage}). */
    public void writeHtml(Path file) {
        ConformancePage.write(this, file);
    }

    /** The console table: configuration × reduction × B with verdict, worst error, parameter and sample. */
    @JsonIgnore
    public String table() {
        return ConformanceTable.render(this);
    }

    /** One line: the verdict, the totals and the run time. */
    @JsonIgnore
    public String summary() {
        return ConformanceTable.summary(this);
    }
}
