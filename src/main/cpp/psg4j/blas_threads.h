// OpenBLAS held at one thread while psg4j computes.
//
// Note [One BLAS thread for every psg4j computation]
// OpenBLAS splits a product over its threads in a way that changes the result's rounding: bytedeco's
// 0.3.31 (DYNAMIC_ARCH, pthreads) gives sgemm results that differ in the last bits between 1 and 2
// threads for shapes such as [64, 2048] x [2048, 128] (Haswell, Zen kernels) or [2, 1000] x
// [1000, 1000] (every kernel). Its thread count is one process-wide number: in a pthreads build
// (openblas_get_parallel() == 1) openblas_set_num_threads_local sets that same number (measured:
// a worker's set_local(1) makes the main thread read 1 too), so a count cannot belong to a call.
// When the reference's sample workers held it at one only while they ran, everything else psg4j
// ran (the vmap engine, the probes, a check's sampler) took 1 or N threads depending on whether
// another thread was inside a reference at that instant: a shared Model's numbers, and even the
// determinism probe's two forwards, differed at rounding level from a single-threaded run.
// So every psg4j computation holds the count at one for its whole length: whatever else psg4j
// runs at the same time, every product it issues is split the same way, and none depends on
// the machine's core count. Parallelism comes from the calling thread's intra-op (OpenMP)
// threads, which are per thread, and from the reference's sample workers. The hold is counted:
// the first holder saves the process's count, the last puts it back; meanwhile code of the
// process outside psg4j also sees one BLAS thread.
#pragma once

namespace psg4j {

class OneBlasThread {
 public:
  OneBlasThread();
  ~OneBlasThread();
  OneBlasThread(const OneBlasThread&) = delete;
  OneBlasThread& operator=(const OneBlasThread&) = delete;
};

// OpenBLAS's thread count now (0 where no OpenBLAS is loaded), for tests and diagnostics.
int openblas_threads();
// Sets every loaded OpenBLAS's thread count, as a user's openblas_set_num_threads would (tests).
void set_openblas_threads(int threads);

}  // namespace psg4j
