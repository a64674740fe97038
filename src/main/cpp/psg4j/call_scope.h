// Which outside call a thread's work belongs to, so that a Java callback's failure reaches the
// call whose work raised it.
//
// Note [Call scopes]
// ~~~~~~~~~~~~~~~~~~
// A Java callback (a function model's forward, a user's layer forward, a custom loss) that throws
// returns a status; the native error that unwinds to the Java caller only says that the Java code
// threw, and the exception itself stays on the Java side until that caller takes it. A model may
// be shared by Java threads, and a callback runs on whichever thread does psg4j's work (a sample
// worker, a stream worker), not the Java caller's; so "the exception recorded for this model"
// may be another thread's, and a call that succeeds must not drop a failure that is another's.
// Each Java call into the core therefore runs in a call scope, a number the Java side picks and
// sets on its thread (bridge: swap_call_scope); every thread psg4j starts for that work inherits
// it (CallerThreadState), the bridge hands it to each callback, and the callback files its
// exception under it. The Java call then takes back exactly what its own callbacks threw.
#pragma once

#include <ATen/ThreadLocalState.h>

#include <cstdint>

namespace psg4j {

using CallScope = int64_t;

// The scope of a thread that no outside call set (its callbacks' failures are reported by the
// native error alone).
constexpr CallScope kNoCallScope = 0;

// The calling thread's call scope.
CallScope current_call_scope();

// Sets the calling thread's call scope; returns the one it replaces (to be set back).
CallScope set_call_scope(CallScope scope);

// What a thread that psg4j starts for the calling thread's work inherits from it: LibTorch's
// thread-local state (grad mode, dispatch keys, ...) and the call scope. Captured on the calling
// thread; a Guard installs it on a worker for the guard's lifetime.
class CallerThreadState {
 public:
  CallerThreadState() : scope_(current_call_scope()) {}

  class Guard {
   public:
    explicit Guard(const CallerThreadState& caller)
        : torch_state_(caller.torch_state_), outer_scope_(set_call_scope(caller.scope_)) {}
    ~Guard() { set_call_scope(outer_scope_); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    at::ThreadLocalStateGuard torch_state_;
    CallScope outer_scope_;
  };

 private:
  at::ThreadLocalState torch_state_;
  CallScope scope_;
};

}  // namespace psg4j
