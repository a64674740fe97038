/**
 * The built-in examples of {@code psg4j demo}: a hand-written Linear grad sampler (activation ⊗
 * backprop, batch-first like Opacus's hooks) and deliberately broken variants of it.
 */
package dev.psg4j.cli.demo;
