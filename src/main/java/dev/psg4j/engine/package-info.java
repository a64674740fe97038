/** The grad samplers psg4j ships (the vmap engine, the microbatch reference) and reading torch.save files. */
package dev.psg4j.engine;
