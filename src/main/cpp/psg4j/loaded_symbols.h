// Thread-count settings of the libraries LibTorch loaded (its OpenMP runtime, its BLAS), found by
// name among the loaded objects rather than linked: a pip build bundles a renamed libgomp,
// bytedeco's pytorch and openblas presets may each load an OpenBLAS, and the JVM loads them
// without making their symbols global, so dlsym(RTLD_DEFAULT, ...) would not see them.
#pragma once

#include <vector>

namespace psg4j {

// One library's thread-count setter and getter, pairwise from the same loaded copy.
struct ThreadSetting {
  void (*set)(int);
  int (*get)();
};

// Every loaded copy's `setter` / `getter` pair (empty where no loaded object exports them).
std::vector<ThreadSetting> loaded_thread_settings(const char* setter, const char* getter);

}  // namespace psg4j
