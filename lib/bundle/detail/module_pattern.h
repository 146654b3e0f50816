#pragma once
// Python's re.fullmatch(pattern, text) for the module-name patterns of PEFT configs
// (target_modules, exclude_modules, the keys of rank_pattern and alpha_pattern), which
// arrive with a downloaded adapter. Matched with PCRE2, whose Perl syntax Python's re
// follows closely, with its work bounded: std::regex backtracks without limit, and a
// 16-character target_modules of "(.*)*(.*)*(.*)*X" kept `gaggle import-peft` busy past
// 20 seconds (it was stopped there). A pattern that needs too much work is an error here.
#include <string>
#include <string_view>

namespace gaggle::bundle::detail {

struct PatternMatch {
  bool matched = false;
  std::string error;  // not empty: the pattern cannot be used (syntax, size, or too much work)
};

PatternMatch full_match_module_pattern(std::string_view pattern, std::string_view text);

}  // namespace gaggle::bundle::detail
