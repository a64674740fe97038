package dev.psg4j.bench;

/**
 * How a timed sampler fared in its one exact check against the microbatch reference at a batch
 * size (reduction sum, outside the timed region): its timing is only worth reading when it passed.
 *
 * @param status what the check found
 * @param detail the first failure line, or why the sampler refused the model; null when it passed
 */
public record Verification(Status status, String detail) {
    public enum Status {
        /** Its per-sample gradients matched the reference: the timing is of a correct sampler. */
        PASSED("verified"),
        /** They differ from the reference: the timing is of a wrong sampler (timed, marked). */
        WRONG("WRONG"),
        /** The sampler refused the model (UnsupportedModelException): not timed. */
        UNSUPPORTED("unsupported"),
        /** The sampler threw: not timed. */
        FAILED("failed");

        private final String mark;

        Status(String mark) {
            this.mark = mark;
        }

        /** The table's mark next to (or instead of) the timing. */
        public String mark() {
            return mark;
        }

        /** Whether the method can be timed (it returned gradients, right or wrong). */
        public boolean timed() {
            return this == PASSED || this == WRONG;
        }
    }

    public static final Verification PASSED = new Verification(Status.PASSED, null);

    public boolean passed() {
        return status == Status.PASSED;
    }
}
