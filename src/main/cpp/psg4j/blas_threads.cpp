#include "psg4j/blas_threads.h"

#include "psg4j/held_setting.h"
#include "psg4j/loaded_symbols.h"

#include <vector>

namespace psg4j {
namespace {

const std::vector<ThreadSetting>& openblas() {
  static const std::vector<ThreadSetting> found =
      loaded_thread_settings("openblas_set_num_threads", "openblas_get_num_threads");
  return found;
}

// OpenBLAS's thread count, every loaded copy's, held at one.
struct OpenBlasThreads {
  static std::vector<int> save_and_hold() {
    std::vector<int> saved;
    for (const ThreadSetting& s : openblas()) {
      saved.push_back(s.get());
      if (saved.back() != 1) s.set(1);
    }
    return saved;
  }
  static void restore(const std::vector<int>& saved) {
    for (size_t k = 0; k < saved.size(); ++k) {
      if (saved[k] != 1) openblas()[k].set(saved[k]);
    }
  }
};

}  // namespace

OneBlasThread::OneBlasThread() { HeldSetting<OpenBlasThreads>::acquire(); }

OneBlasThread::~OneBlasThread() { HeldSetting<OpenBlasThreads>::release(); }

int openblas_threads() { return openblas().empty() ? 0 : openblas().front().get(); }

void set_openblas_threads(int threads) {
  for (const ThreadSetting& s : openblas()) s.set(threads);
}

}  // namespace psg4j
