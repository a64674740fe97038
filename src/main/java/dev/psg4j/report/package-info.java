/**
 * Check reports: the verdict per reduction and parameter, failures, diagnoses (likely causes, {@link
 * dev.psg4j.report.DiagnosisKind}), JSON (DESIGN §5), the console table and
 * the self-contained HTML page ({@link dev.psg4j.report.HtmlReport}).
 */
package dev.psg4j.report;
