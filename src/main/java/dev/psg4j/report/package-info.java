/** Check reports: the verdict per reduction and parameter, failures, JSON (DESIGN §5) and the console table. */
package dev.psg4j.report;
