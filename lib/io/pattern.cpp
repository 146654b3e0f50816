#include "io/pattern.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstdint>

namespace gaggle::io {

namespace {

// Far above what the patterns here need (a schema pattern over a 1 MB string, a module
// pattern over a 60-character path: a few hundred steps), far below a noticeable pause.
constexpr std::uint32_t kMatchLimit = 1'000'000;
constexpr std::uint32_t kDepthLimit = 10'000;
constexpr std::size_t kMaxPatternLength = 4096;

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  const int n = pcre2_get_error_message(code, buffer, sizeof buffer);
  return n < 0 ? "PCRE2 error " + std::to_string(code) : std::string(reinterpret_cast<const char*>(buffer));
}

}  // namespace

struct Pattern::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

Pattern::Pattern(std::string_view pattern, Anchor anchor) {
  if (pattern.size() > kMaxPatternLength) {
    error_ = "longer than " + std::to_string(kMaxPatternLength) + " characters";
    return;
  }
  // Anchored at both ends for a full match: the alternatives of "a|ab" are tried against the whole text.
  const std::uint32_t options = anchor == Anchor::full ? PCRE2_ANCHORED | PCRE2_ENDANCHORED : 0;
  int code = 0;
  PCRE2_SIZE offset = 0;
  auto compiled = std::make_shared<Compiled>();
  compiled->code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &code, &offset, nullptr);
  if (!compiled->code) {
    error_ = pcre2_message(code) + " at offset " + std::to_string(offset);
    return;
  }
  compiled_ = std::move(compiled);
}

PatternMatch Pattern::match(std::string_view text) const {
  PatternMatch result;
  if (!compiled_) {
    result.error = error_;
    return result;
  }
  // Per call, so that one Pattern serves threads at once.
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(compiled_->code, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  int rc = PCRE2_ERROR_NOMEMORY;
  if (data && context) {
    pcre2_set_match_limit(context, kMatchLimit);
    pcre2_set_depth_limit(context, kDepthLimit);
    rc = pcre2_match(compiled_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0, data, context);
  }
  pcre2_match_context_free(context);
  pcre2_match_data_free(data);
  if (rc >= 0)
    result.matched = true;
  else if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT)
    result.error = "matching it takes more work than any sensible pattern needs (nested repeats such as (.*)*?)";
  else if (rc != PCRE2_ERROR_NOMATCH)
    result.error = pcre2_message(rc);
  return result;
}

}  // namespace gaggle::io
