/** The grad samplers psg4j ships (the microbatch reference) and reading torch.save files. */
package dev.psg4j.engine;
