#include "io/error.h"

#include <cstring>

namespace gaggle {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid: return "invalid";
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::exists: return "exists";
    case ErrorCode::mismatch: return "mismatch";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::auth: return "auth";
    case ErrorCode::network: return "network";
    case ErrorCode::io: return "io";
    case ErrorCode::interrupted: return "interrupted";
    case ErrorCode::usage: return "usage";
  }
  return "unknown";
}

Error::Error(ErrorCode code, std::string room, std::string message, std::string hint)
    : std::runtime_error(std::move(message)), code_(code), room_(std::move(room)), hint_(std::move(hint)) {}

Error Error::with_context(const std::string& context) const {
  return Error(code_, room_, context + ": " + what(), hint_);
}

void throw_error(ErrorCode code, const std::string& room, const std::string& message, const std::string& hint) {
  throw Error(code, room, message, hint);
}

std::string errno_text(int err) {
  char buf[256];
  // GNU strerror_r returns the message pointer (possibly not buf).
  return ::strerror_r(err, buf, sizeof buf);
}

}  // namespace gaggle
