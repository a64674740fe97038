#include "psg4j/sample_workers.h"

#include "psg4j/call_scope.h"

#include <ATen/Parallel.h>

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace psg4j {
namespace {

using SetThreads = void (*)(int);
using GetThreads = int (*)();

// `symbol` as every loaded library exports it, each copy once: found by name among the loaded
// objects rather than linked, because the OpenMP runtime and the BLAS are LibTorch's (a pip
// build bundles a renamed libgomp; bytedeco's pytorch and openblas presets may each load an
// OpenBLAS), and the JVM loads them without making their symbols global.
std::vector<void*> loaded_symbols(const char* symbol) {
  std::vector<std::string> names;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') {
          static_cast<std::vector<std::string>*>(data)->emplace_back(info->dlpi_name);
        }
        return 0;
      },
      &names);
  std::vector<void*> found;
  for (const std::string& name : names) {  // dlopen outside dl_iterate_phdr's lock
    void* handle = dlopen(name.c_str(), RTLD_LAZY | RTLD_NOLOAD);
    if (handle == nullptr) continue;
    void* f = dlsym(handle, symbol);
    if (f != nullptr && std::find(found.begin(), found.end(), f) == found.end()) found.push_back(f);
    dlclose(handle);  // RTLD_NOLOAD took a reference
  }
  return found;
}

// A thread-count setting of one library: its setter and getter, pairwise from the same copy.
struct ThreadSetting {
  SetThreads set;
  GetThreads get;
};

std::vector<ThreadSetting> settings_of(const char* setter, const char* getter) {
  std::vector<ThreadSetting> out;
  const std::vector<void*> sets = loaded_symbols(setter);
  const std::vector<void*> gets = loaded_symbols(getter);
  for (size_t k = 0; k < sets.size() && k < gets.size(); ++k) {
    out.push_back({reinterpret_cast<SetThreads>(sets[k]), reinterpret_cast<GetThreads>(gets[k])});
  }
  return out;
}

const std::vector<ThreadSetting>& openmp() {
  static const std::vector<ThreadSetting> found = settings_of("omp_set_num_threads", "omp_get_max_threads");
  return found;
}

const std::vector<ThreadSetting>& openblas() {
  static const std::vector<ThreadSetting> found =
      settings_of("openblas_set_num_threads", "openblas_get_num_threads");
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

// OpenBLAS's process-wide pool held at one thread while any holder lives: the first holder saves
// the count, the last puts it back, so overlapping calls (two checks on two threads) never leave
// it at one.
class OneOpenBlasThread {
 public:
  OneOpenBlasThread() {
    std::lock_guard<std::mutex> lock(mutex());
    if (holders()++ > 0) return;
    saved().clear();
    for (const ThreadSetting& s : openblas()) {
      saved().push_back(s.get());
      s.set(1);
    }
  }
  ~OneOpenBlasThread() {
    std::lock_guard<std::mutex> lock(mutex());
    if (--holders() > 0) return;
    for (size_t k = 0; k < saved().size(); ++k) openblas()[k].set(saved()[k]);
  }
  OneOpenBlasThread(const OneOpenBlasThread&) = delete;
  OneOpenBlasThread& operator=(const OneOpenBlasThread&) = delete;

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static int& holders() {
    static int n = 0;
    return n;
  }
  static std::vector<int>& saved() {
    static std::vector<int> counts;
    return counts;
  }
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
    OneOpenBlasThread blas;
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

int openblas_threads() { return openblas().empty() ? 0 : openblas().front().get(); }

}  // namespace psg4j
