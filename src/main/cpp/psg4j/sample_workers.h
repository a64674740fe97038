// The reference's sample workers: N threads, each running its samples' ops on ONE
// intra-op thread, so that a sample's gradient is computed the same way whichever worker takes it
// and however many there are (bit-identical verdicts and numbers at any N).
//
// How LibTorch parallelizes here: bytedeco's build (like pip's) runs ATen's intra-op work on
// OpenMP (at::get_parallel_info() says "ATen parallel backend: OpenMP"), whose thread count is
// per thread (omp_set_num_threads sets the calling thread's count only; at::set_num_threads also
// stores a process-wide default that new threads pick up, so psg4j never calls it here). Its BLAS
// is OpenBLAS built with pthreads: one process-wide thread count, held at one while workers run
// (see Note [One BLAS thread for every psg4j computation] in blas_threads.h).
#pragma once

#include <functional>

namespace psg4j {

// The number of workers `requested` means: itself when positive, else the calling thread's
// intra-op thread count (at::get_num_threads(), what the caller's torch.set_num_threads gave).
int sample_workers(int requested);

// Runs work(w) for w in [0, workers) on `workers` threads, w = 0 on the caller's (fewer where the
// system gives no more threads: `work` takes its samples from a queue shared by all), each with its
// ops held to one intra-op thread (OpenMP's count for that thread; OpenBLAS's, process-wide, by a
// OneBlasThread); the caller's thread gets its own count back when all have ended. The
// caller's thread-local state (grad mode, dispatch keys, call scope) is every worker's. Rethrows the first
// exception a worker let escape, after all have ended; `work` is expected to catch its own.
void run_single_threaded(int workers, const std::function<void(int worker)>& work);

// Sets the calling thread's intra-op thread count (0: leaves it) and returns the one it had: the
// thread's own OpenMP count, which ATen's parallel_for and oneDNN read, not at::set_num_threads's
// process-wide default for threads started later (used where no OpenMP runtime is loaded).
int set_intra_op_threads_of_this_thread(int threads);

// The calling thread's OpenMP thread count, for tests that it is restored (0 where no OpenMP
// runtime is loaded).
int openmp_threads_of_this_thread();

}  // namespace psg4j
