/** The {@code psg4j} command line (picocli): {@code check}, {@code bench} and {@code demo}, exit status 0 / 1 / 2. */
package dev.psg4j.cli;
