#include "psg4j/op_trace.h"

#include <ATen/record_function.h>

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

OpTrace::OpTrace() {
  trace_state = TraceState{};
  trace_state.exceptions_in_flight = std::uncaught_exceptions();
  handle_ = at::addThreadLocalCallback(
      at::RecordFunctionCallback(on_op_start, on_op_end).scopes({at::RecordScope::FUNCTION}));
}

OpTrace::~OpTrace() { at::removeCallback(handle_); }

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
