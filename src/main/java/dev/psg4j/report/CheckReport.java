package dev.psg4j.report;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;

import java.nio.file.Path;
import java.util.List;

/**
 * The result of a check (DESIGN §5): what {@code --json} writes, with stable field names.
 * {@code schema_version} {@value #SCHEMA_VERSION} added {@code mode} ("exact" or "sketch"), the
 * {@code sketch} summary (null in exact mode) and, per parameter, the sketch's zone; a sketch
 * leaves null the per-sample fields of the parameters it passed.
 * Added since, without a version bump (new fields only): {@code candidate}, what was compared
 * ("gradients", "norms" or "clipped_sum"; absent in older reports, meaning gradients), and
 * {@code clipping} ({@link ClippingSummary}, clipped-sum checks only). A norms report has one
 * parameter entry per compared norm vector (per parameter, or "(whole gradient)"), shape [B]; a
 * clipped-sum report one per parameter, shape the parameter's, with no per-sample fields.
 * The device fields added {@code reference_route}: how the reference ran ("cpu workers", "cuda streams",
 * "cuda graphs" or "cuda streams (graph capture failed: ...)"), absent where no per-sample gradient
 * comparison ran (a probe's finding stopped the check; norms and clipped-sum checks). {@code device}
 * is the check's device, canonical ("cpu", "cuda:0"). The sketch summary added {@code precision} (the
 * projections' precision asked: "double" or "float-first") and {@code double_params}, and its
 * {@code reference_precision} may read "float, then double" ({@link SketchSummary}).
 * {@code schema_version} 3 changed what a gradient check passes by default (the rounding rule) and
 * added {@code tolerance} (the rule applied: "rounding" or "allclose"; absent for norms and
 * clipped sums, whose criteria are their own), {@code reference_precision} (the precision the
 * per-sample reference ran in: "float", "double", ...), {@code rounding} (how its rounding level was
 * measured, {@link RoundingSummary}; absent where it was not) and, per parameter,
 * {@code rounding_level} and {@code sample_rounding_level}.
 */
@JsonPropertyOrder({"schema_version", "passed", "mode", "engine", "batch_size", "device", "loss", "atol", "rtol",
        "tolerance", "reference_precision", "rounding", "sketch", "reductions", "failures", "diagnoses", "candidate",
        "clipping", "reference_route"})
public record CheckReport(
        @JsonProperty("schema_version") int schemaVersion,
        boolean passed,
        String mode,
        String engine,
        @JsonProperty("batch_size") long batchSize,
        String device,
        String loss,
        double atol,
        double rtol,
        List<ReductionReport> reductions,
        @JsonInclude(JsonInclude.Include.NON_NULL) SketchSummary sketch,
        List<Failure> failures,
        List<Diagnosis> diagnoses,
        // ---- norms-only and clipped-sum candidates ----
        @JsonInclude(JsonInclude.Include.NON_NULL) String candidate,
        @JsonInclude(JsonInclude.Include.NON_NULL) ClippingSummary clipping,
        // ---- devices ----
        @JsonProperty("reference_route") @JsonInclude(JsonInclude.Include.NON_NULL) String referenceRoute,
        @JsonInclude(JsonInclude.Include.NON_NULL) String tolerance,
        @JsonProperty("reference_precision") @JsonInclude(JsonInclude.Include.NON_NULL) String referencePrecision,
        @JsonInclude(JsonInclude.Include.NON_NULL) RoundingSummary rounding) {

    /** What a check compared: per-sample gradients, per-sample norms or a clipped sum ({@code candidate}). */
    public static final String GRADIENTS = "gradients", NORMS = "norms", CLIPPED_SUM = "clipped_sum";

    /** A report of per-sample gradients (candidate "gradients", no clipping). */
    public CheckReport(int schemaVersion, boolean passed, String mode, String engine, long batchSize, String device,
                       String loss, double atol, double rtol, List<ReductionReport> reductions, SketchSummary sketch,
                       List<Failure> failures, List<Diagnosis> diagnoses) {
        this(schemaVersion, passed, mode, engine, batchSize, device, loss, atol, rtol, reductions, sketch, failures,
                diagnoses, GRADIENTS, null, null);
    }

    /** A report without {@code reference_route} (as reports before the device fields). */
    public CheckReport(int schemaVersion, boolean passed, String mode, String engine, long batchSize, String device,
                       String loss, double atol, double rtol, List<ReductionReport> reductions, SketchSummary sketch,
                       List<Failure> failures, List<Diagnosis> diagnoses, String candidate, ClippingSummary clipping) {
        this(schemaVersion, passed, mode, engine, batchSize, device, loss, atol, rtol, reductions, sketch, failures,
                diagnoses, candidate, clipping, null);
    }

    /** A report without the tolerance fields (as before schema 3). */
    public CheckReport(int schemaVersion, boolean passed, String mode, String engine, long batchSize, String device,
                       String loss, double atol, double rtol, List<ReductionReport> reductions, SketchSummary sketch,
                       List<Failure> failures, List<Diagnosis> diagnoses, String candidate, ClippingSummary clipping,
                       String referenceRoute) {
        this(schemaVersion, passed, mode, engine, batchSize, device, loss, atol, rtol, reductions, sketch, failures,
                diagnoses, candidate, clipping, referenceRoute, null, null, null);
    }
    // ---- end of the norms block ----

    /**
     * The report format: 1 had no schema_version field; 2 added mode and the sketch fields; 3 the
     * rounding rule as the default criterion and its fields.
     */
    public static final int SCHEMA_VERSION = 3;

    /** An exact-mode report of the current schema. */
    public CheckReport(boolean passed, String engine, long batchSize, String device, String loss, double atol,
                       double rtol, List<ReductionReport> reductions, List<Failure> failures,
                       List<Diagnosis> diagnoses) {
        this(SCHEMA_VERSION, passed, "exact", engine, batchSize, device, loss, atol, rtol, reductions, null, failures,
                diagnoses);
    }

    public static CheckReport fromJson(String json) {
        return ReportJson.read(json, CheckReport.class, "check report");
    }

    public String toJson() {
        return ReportJson.write(this);
    }

    public void writeJson(Path file) {
        ReportJson.write(this, file, "report");
    }

    /**
     * Writes a self-contained HTML page: summary, failures, diagnoses, the verdict table and per-sample
     * charts ({@link HtmlReport}).
     */
    public void writeHtml(Path file) {
        HtmlReport.write(this, file);
    }

    /** The console table: reduction × parameter with verdict, errors, worst sample, bad samples ("" when nothing was compared). */
    @JsonIgnore
    public String table() {
        return ReportTable.render(this);
    }

    /** A one-paragraph human summary: the verdict and the first failures. */
    @JsonIgnore
    public String summary() {
        return ReportTable.summary(this);
    }
}
