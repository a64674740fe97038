/** Models psg4j runs natively: TorchScript modules, C++-frontend modules built in Java, Java functions. */
package dev.psg4j.model;
