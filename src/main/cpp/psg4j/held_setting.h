// A process-wide setting that scopes on any thread hold at a value of psg4j's (or, for state psg4j
// only disturbs, leave free to change meanwhile): the first holder saves the process's value, the
// last one to end puts it back, so holds may nest and overlap across threads and never leave the
// setting changed.
#pragma once

#include <mutex>

namespace psg4j {

// `Setting` provides `Saved save_and_hold()` (reads the process's value, sets psg4j's, returns what
// to put back) and `void restore(const Saved&)`; one HeldSetting per setting, for the process.
template <typename Setting>
class HeldSetting {
 public:
  using Saved = decltype(Setting::save_and_hold());

  static void acquire() {
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.holders++ == 0) s.saved = Setting::save_and_hold();
  }

  static void release() {
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    if (--s.holders == 0) Setting::restore(s.saved);
  }

 private:
  struct State {
    std::mutex mutex;
    int holders = 0;
    Saved saved{};
  };

  static State& state() {
    static State s;
    return s;
  }
};

}  // namespace psg4j
