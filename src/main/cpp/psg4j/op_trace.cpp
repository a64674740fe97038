#include "psg4j/op_trace.h"

#include <exception>

namespace psg4j {
namespace {

struct TraceState {
  std::vector<std::string> running;
  std::vector<std::string> failing;
  int exceptions_in_flight = 0;
};

thread_local TraceState trace_state;

std::unique_ptr<at::ObserverContext> on_op_start(const at::RecordFunction& fn) {
  trace_state.running.emplace_back(fn.name());
  return nullptr;
}

// During unwinding an exception is in flight; the first op to end then is the one that threw,
// and the ops still running are its callers.
void on_op_end(const at::RecordFunction&, at::ObserverContext*) {
  if (trace_state.failing.empty() && std::uncaught_exceptions() > trace_state.exceptions_in_flight) {
    trace_state.failing = trace_state.running;
  }
  if (!trace_state.running.empty()) trace_state.running.pop_back();
}

}  // namespace

OpObserverScope::OpObserverScope(StartFn on_start, EndFn on_end, bool needs_inputs, bool needs_outputs)
    : handle_(at::addThreadLocalCallback(at::RecordFunctionCallback(on_start, on_end)
                                             .needsInputs(needs_inputs)
                                             .needsOutputs(needs_outputs)
                                             .scopes({at::RecordScope::FUNCTION}))) {}

OpObserverScope::~OpObserverScope() { at::removeCallback(handle_); }

OpTrace::OpTrace() {
  trace_state = TraceState{};
  trace_state.exceptions_in_flight = std::uncaught_exceptions();
  observer_ = std::make_unique<OpObserverScope>(on_op_start, on_op_end);
}

const std::vector<std::string>& OpTrace::failing_ops() const { return trace_state.failing; }

std::string OpTrace::describe() const {
  std::string out;
  std::string previous;
  for (const auto& op : trace_state.failing) {
    // Each functorch level dispatches the op again; one mention per call is enough.
    if (op != previous) out += (out.empty() ? "" : " > ") + op;
    previous = op;
  }
  return out;
}

}  // namespace psg4j
