/**
 * The demo's hooks-style grad samplers on {@link dev.psg4j.engine.LayerCapture}: a correct one and
 * deliberately broken ones (batch-first-only Linear, conv ignoring groups, last use of a shared
 * layer only), registered as {@code --engine demo-...}, each failing exactly its rows of
 * {@code psg4j conform}.
 */
package dev.psg4j.conform.demo;
