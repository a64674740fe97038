#include "psg4j/call_scope.h"

namespace psg4j {
namespace {

thread_local CallScope this_thread_scope = kNoCallScope;

}  // namespace

CallScope current_call_scope() { return this_thread_scope; }

CallScope set_call_scope(CallScope scope) {
  const CallScope previous = this_thread_scope;
  this_thread_scope = scope;
  return previous;
}

}  // namespace psg4j
