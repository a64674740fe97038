// Typed errors of the native core. The bridge turns them into typed Java exceptions, so every
// message here must say what was wrong and what to do.
#pragma once

#include <regex>
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

// The line of a LibTorch error message that says what went wrong. A TorchScript interpreter
// error opens with "The following operation failed in the TorchScript interpreter." and its
// tracebacks; the op's own message ("RuntimeError: mat1 and mat2 shapes cannot be multiplied
// (6x7 and 8x16)") is the first "<Name>Error: ..." line after the last traceback header (source
// lines and context may follow a traceback's "<--- HERE" marker, so the last line is not it).
// For any other message: its first line.
inline std::string essential_line(const std::string& text) {
  static const std::string kTraceback = "Traceback of TorchScript";
  static const std::regex kCause("[A-Za-z_][A-Za-z0-9_.]*(Error|Exception): .*");
  const size_t traceback = text.rfind(kTraceback);
  if (traceback != std::string::npos) {
    for (size_t start = text.find('\n', traceback); start != std::string::npos;) {
      const size_t end = text.find('\n', start + 1);
      const std::string line = text.substr(start + 1, end == std::string::npos ? end : end - start - 1);
      if (std::regex_match(line, kCause)) return line;
      start = end;
    }
  }
  return text.substr(0, text.find('\n'));
}

// `text` with the interpreter's opening sentence, wherever a caller's prefix put it ("running M
// on sample 0 failed: The following operation failed ..."), replaced by essential_line(text), so
// that the first line of the message, all that the CLI prints, names the real cause. The
// traceback stays on the lines below. Idempotent.
inline std::string cause_first(const std::string& text) {
  static const std::string kOpening = "The following operation failed in the TorchScript interpreter.";
  const size_t opening = text.find(kOpening);
  if (opening == std::string::npos) return text;
  const std::string cause = essential_line(text);
  if (cause == text.substr(0, text.find('\n'))) return text;  // no cause line found
  return text.substr(0, opening) + cause + text.substr(opening + kOpening.size());
}

}  // namespace psg4j
