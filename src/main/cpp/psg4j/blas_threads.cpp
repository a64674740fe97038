#include "psg4j/blas_threads.h"

#include "psg4j/loaded_symbols.h"

#include <mutex>
#include <vector>

namespace psg4j {
namespace {

const std::vector<ThreadSetting>& openblas() {
  static const std::vector<ThreadSetting> found =
      loaded_thread_settings("openblas_set_num_threads", "openblas_get_num_threads");
  return found;
}

struct Holds {
  std::mutex mutex;
  int holders = 0;
  std::vector<int> saved;  // each loaded copy's count when the first holder came
};

Holds& holds() {
  static Holds h;
  return h;
}

}  // namespace

OneBlasThread::OneBlasThread() {
  Holds& h = holds();
  std::lock_guard<std::mutex> lock(h.mutex);
  if (h.holders++ > 0) return;
  h.saved.clear();
  for (const ThreadSetting& s : openblas()) {
    h.saved.push_back(s.get());
    if (h.saved.back() != 1) s.set(1);
  }
}

OneBlasThread::~OneBlasThread() {
  Holds& h = holds();
  std::lock_guard<std::mutex> lock(h.mutex);
  if (--h.holders > 0) return;
  for (size_t k = 0; k < h.saved.size(); ++k) {
    if (h.saved[k] != 1) openblas()[k].set(h.saved[k]);
  }
}

int openblas_threads() { return openblas().empty() ? 0 : openblas().front().get(); }

void set_openblas_threads(int threads) {
  for (const ThreadSetting& s : openblas()) s.set(threads);
}

}  // namespace psg4j
