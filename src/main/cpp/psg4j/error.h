// Typed errors of the native core. The bridge turns them into typed Java exceptions, so every
// message here must say what was wrong and what to do.
#pragma once

#include <stdexcept>
#include <string>

namespace psg4j {

enum class ErrorKind {
  BadInput,        // the caller's data or options are wrong (exit status 2 in the CLI)
  ModelFailure,    // the model or loss raised while running
  CallbackFailed,  // a Java callback threw; Java rethrows its own exception
  Unsupported,     // an engine cannot run this model (the reference can): suggest another engine
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

[[noreturn]] inline void bad_input(const std::string& message) {
  throw Error(ErrorKind::BadInput, message);
}

}  // namespace psg4j
