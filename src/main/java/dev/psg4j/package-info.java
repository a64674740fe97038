/**
 * psg4j verifies per-sample gradients against microbatch references. Start with
 * {@link dev.psg4j.check.PerSampleCheck}; models come from {@link dev.psg4j.model.Models}, engines
 * from {@link dev.psg4j.engine.Engines}, reports are {@link dev.psg4j.report.CheckReport}. Errors are
 * {@link dev.psg4j.BadInputException} (fix the input) or {@link dev.psg4j.ModelExecutionException}
 * (the model or loss failed).
 */
package dev.psg4j;
