// Names the ATen op an exception came out of. Used only after a failure, to say which op an
// engine could not run (e.g. one with no vmap batching rule), so it costs nothing otherwise.
#pragma once

#include <string>
#include <vector>

namespace psg4j {

// While alive, records on this thread the ops that were running when an exception first passed
// through one of them: outermost first, the op that threw last.
class OpTrace {
 public:
  OpTrace();
  ~OpTrace();
  OpTrace(const OpTrace&) = delete;
  OpTrace& operator=(const OpTrace&) = delete;

  const std::vector<std::string>& failing_ops() const;
  // "aten::item > aten::_local_scalar_dense", or "" when no op threw.
  std::string describe() const;

 private:
  uint64_t handle_;
};

}  // namespace psg4j
