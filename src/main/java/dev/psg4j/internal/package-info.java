/** psg4j's internals shared across its packages; not API (a module descriptor would not export it). */
package dev.psg4j.internal;
