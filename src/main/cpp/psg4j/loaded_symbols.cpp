#include "psg4j/loaded_symbols.h"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <string>

namespace psg4j {
namespace {

// `symbol` as every loaded object exports it, each copy once.
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

}  // namespace

std::vector<ThreadSetting> loaded_thread_settings(const char* setter, const char* getter) {
  std::vector<ThreadSetting> out;
  const std::vector<void*> sets = loaded_symbols(setter);
  const std::vector<void*> gets = loaded_symbols(getter);
  for (size_t k = 0; k < sets.size() && k < gets.size(); ++k) {
    out.push_back({reinterpret_cast<void (*)(int)>(sets[k]), reinterpret_cast<int (*)()>(gets[k])});
  }
  return out;
}

}  // namespace psg4j
