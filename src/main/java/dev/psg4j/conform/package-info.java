/**
 * Conformance: psg4j's layer matrix ({@link dev.psg4j.conform.LayerMatrix}, C++-frontend
 * configurations built in Java; {@link dev.psg4j.conform.TorchScriptMatrix} for folders of
 * TorchScript ones) and {@link dev.psg4j.conform.Conformance}, which runs any grad sampler over it
 * ({@code psg4j conform}).
 */
package dev.psg4j.conform;
