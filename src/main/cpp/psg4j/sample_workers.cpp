#include "psg4j/sample_workers.h"

#include "psg4j/blas_threads.h"
#include "psg4j/call_scope.h"
#include "psg4j/loaded_symbols.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace psg4j {
namespace {

const std::vector<ThreadSetting>& openmp() {
  static const std::vector<ThreadSetting> found =
      loaded_thread_settings("omp_set_num_threads", "omp_get_max_threads");
  return found;
}

// Runs LibTorch's first-use setting of this thread's intra-op count now, so that it cannot reset
// a count set after it. at::internal::lazy_init_num_threads is inline with a thread_local flag, and
// LibTorch, loaded without global symbols, has its own copy of that flag: calling the inline here
// would set only ours, and LibTorch's first parallel_for in a fresh worker thread would put the
// default count back (workers then ran with several OpenMP threads: oversubscribed, and sums such
// as LayerNorm's weight gradient rounded differently from run to run). at::get_num_threads is
// LibTorch's own and runs its copy.
void init_intra_op_threads() {
  at::internal::lazy_init_num_threads();
  (void)at::get_num_threads();
}

// The calling thread's OpenMP count held at one until the guard ends (a thread-local setting).
class OneOpenMpThread {
 public:
  OneOpenMpThread() {
    init_intra_op_threads();  // ATen's own first-use setting must not come later
    for (const ThreadSetting& s : openmp()) {
      previous_.push_back(s.get());
      s.set(1);
    }
  }
  ~OneOpenMpThread() {
    for (size_t k = 0; k < previous_.size(); ++k) openmp()[k].set(previous_[k]);
  }
  OneOpenMpThread(const OneOpenMpThread&) = delete;
  OneOpenMpThread& operator=(const OneOpenMpThread&) = delete;

 private:
  std::vector<int> previous_;
};

}  // namespace

int sample_workers(int requested) {
  if (requested > 0) return requested;
  init_intra_op_threads();
  return std::max(1, at::get_num_threads());
}

void run_single_threaded(int workers, const std::function<void(int worker)>& work) {
  workers = std::max(1, workers);
  const CallerThreadState caller_state;
  std::mutex failure_mutex;
  std::exception_ptr failure;
  auto guarded = [&](int w) {
    try {
      work(w);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  {
    OneBlasThread blas;  // see Note [One BLAS thread for every psg4j computation]
    OneOpenMpThread caller_openmp;
    std::vector<std::thread> threads;
    threads.reserve(workers - 1);
    for (int w = 1; w < workers; ++w) {
      try {
        threads.emplace_back([&, w] {
          CallerThreadState::Guard same_state(caller_state);
          OneOpenMpThread own_openmp;
          guarded(w);
        });
      } catch (const std::system_error&) {
        break;  // no more threads to be had: the ones running share the samples
      }
    }
    guarded(0);
    for (std::thread& t : threads) t.join();
  }
  if (failure) std::rethrow_exception(failure);
}

int set_intra_op_threads_of_this_thread(int threads) {
  init_intra_op_threads();
  const int previous = at::get_num_threads();
  if (threads > 0 && threads != previous) {
    if (openmp().empty()) {
      at::set_num_threads(threads);
    } else {
      for (const ThreadSetting& s : openmp()) s.set(threads);
    }
  }
  return previous;
}

int openmp_threads_of_this_thread() {
  return openmp().empty() ? 0 : openmp().front().get();
}

}  // namespace psg4j
