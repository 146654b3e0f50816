#include "bundle/detail/module_pattern.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstdint>
#include <memory>
#include <string>

namespace gaggle::bundle::detail {

namespace {

// Far above what a module-name pattern needs (matching one against a 60-character path
// takes a few hundred steps), far below a noticeable pause.
constexpr std::uint32_t kMatchLimit = 1'000'000;
constexpr std::uint32_t kDepthLimit = 10'000;
constexpr std::size_t kMaxPatternLength = 4096;

struct CodeDeleter {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};
struct MatchContextDeleter {
  void operator()(pcre2_match_context* m) const { pcre2_match_context_free(m); }
};

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  const int n = pcre2_get_error_message(code, buffer, sizeof buffer);
  return n < 0 ? "PCRE2 error " + std::to_string(code) : std::string(reinterpret_cast<const char*>(buffer));
}

}  // namespace

PatternMatch full_match_module_pattern(std::string_view pattern, std::string_view text) {
  PatternMatch result;
  if (pattern.size() > kMaxPatternLength) {
    result.error = "longer than " + std::to_string(kMaxPatternLength) + " characters";
    return result;
  }
  int code = 0;
  PCRE2_SIZE offset = 0;
  // Anchored at both ends: fullmatch, with the alternatives of "a|ab" tried against the whole text.
  const auto* bytes = reinterpret_cast<PCRE2_SPTR>(pattern.data());
  const std::uint32_t options = PCRE2_ANCHORED | PCRE2_ENDANCHORED;
  std::unique_ptr<pcre2_code, CodeDeleter> re(pcre2_compile(bytes, pattern.size(), options, &code, &offset, nullptr));
  if (!re) {
    result.error = pcre2_message(code) + " at offset " + std::to_string(offset);
    return result;
  }
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> data(pcre2_match_data_create_from_pattern(re.get(), nullptr));
  std::unique_ptr<pcre2_match_context, MatchContextDeleter> context(pcre2_match_context_create(nullptr));
  if (!data || !context) {
    result.error = "out of memory";
    return result;
  }
  pcre2_set_match_limit(context.get(), kMatchLimit);
  pcre2_set_depth_limit(context.get(), kDepthLimit);
  const int rc =
      pcre2_match(re.get(), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0, data.get(), context.get());
  if (rc >= 0) {
    result.matched = true;
  } else if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT) {
    result.error = "matching it against '" + std::string(text) +
                   "' takes more work than any module-name pattern needs (nested repeats such as (.*)*?)";
  } else if (rc != PCRE2_ERROR_NOMATCH) {
    result.error = pcre2_message(rc);
  }
  return result;
}

}  // namespace gaggle::bundle::detail
