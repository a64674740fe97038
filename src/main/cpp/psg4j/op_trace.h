// Observing the ATen ops that run on this thread, through LibTorch's RecordFunction: an RAII
// scope for any observer, and OpTrace, which names the op an exception came out of. OpTrace is
// used only after a failure, to say which op an engine could not run (e.g. one with no vmap
// batching rule), so it costs nothing otherwise.
#pragma once

#include <ATen/record_function.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace psg4j {

// While alive, `on_start` (may be null) and `on_end` run for every ATen op (function scope) on
// this thread. `needs_inputs` / `needs_outputs` make RecordFunction keep the op's arguments and
// results for the callbacks. Removes its callback on every path.
class OpObserverScope {
 public:
  using StartFn = std::unique_ptr<at::ObserverContext> (*)(const at::RecordFunction&);
  using EndFn = void (*)(const at::RecordFunction&, at::ObserverContext*);

  OpObserverScope(StartFn on_start, EndFn on_end, bool needs_inputs = false, bool needs_outputs = false);
  ~OpObserverScope();
  OpObserverScope(const OpObserverScope&) = delete;
  OpObserverScope& operator=(const OpObserverScope&) = delete;

 private:
  uint64_t handle_;
};

// While alive, records on this thread the ops that were running when an exception first passed
// through one of them: outermost first, the op that threw last.
class OpTrace {
 public:
  OpTrace();
  OpTrace(const OpTrace&) = delete;
  OpTrace& operator=(const OpTrace&) = delete;

  const std::vector<std::string>& failing_ops() const;
  // "aten::item > aten::_local_scalar_dense", or "" when no op threw.
  std::string describe() const;

 private:
  std::unique_ptr<OpObserverScope> observer_;
};

}  // namespace psg4j
