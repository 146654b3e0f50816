#pragma once
// gaggle::Error — the one exception type of lib/ (style.md §6 "Errors").
//
// Three parts: a code callers may branch on, the room where it arose, and a message
// that grows context as it propagates ("pool 'nlp': bundle 'sst2/1.0.0': ...").
// An optional hint tells the user what to do next; cmd/ prints it under the error.
#include <stdexcept>
#include <string>

namespace gaggle {

enum class ErrorCode {
  invalid,      // malformed input: a file, a flag value, a manifest
  not_found,    // a file, tensor, expert or ref that does not exist
  exists,       // refusing to overwrite or republish
  mismatch,     // two things that must agree do not (hash, fingerprint, shape)
  unsupported,  // understood but not handled (a dtype, a feature not built yet)
  auth,         // signature, trust or credentials
  network,      // a transfer failed
  io,           // the operating system said no
  interrupted,  // the user or a signal stopped the work
  usage,        // the command line itself is wrong (exit code 2)
};

const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string room, std::string message, std::string hint = {});

  ErrorCode code() const { return code_; }
  const std::string& room() const { return room_; }
  const std::string& hint() const { return hint_; }

  // The same error with "context: " in front of the message; hint and code are kept.
  Error with_context(const std::string& context) const;

 private:
  ErrorCode code_;
  std::string room_;
  std::string hint_;
};

// Shorthand for the common throw sites.
[[noreturn]] void throw_error(ErrorCode code, const std::string& room, const std::string& message,
                              const std::string& hint = {});

// The text of errno, for messages like "cannot open 'x': No such file or directory".
std::string errno_text(int err);

}  // namespace gaggle
