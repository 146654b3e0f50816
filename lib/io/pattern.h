#pragma once
// Regular expressions over text from outside gaggle: the JSON Schema "pattern"s checked
// against manifests and pool indexes, and the module patterns of downloaded PEFT configs.
// Matched with PCRE2 (Perl syntax, which both ECMAScript's and Python's follow for these
// patterns) under bounded work. std::regex is not fit for such text: libstdc++ matches by
// recursion, about one stack frame per character, so a 300 KB URL in a manifest overflowed
// the stack in the schema check (a crash); and it backtracks without limit, so a PEFT
// target_modules of "(.*)*(.*)*(.*)*X" kept an import busy past 20 seconds.
#include <memory>
#include <string>
#include <string_view>

namespace gaggle::io {

struct PatternMatch {
  bool matched = false;
  std::string error;  // not empty: no answer (the pattern cannot be used, or needs too much work)
};

class Pattern {
 public:
  enum class Anchor {
    search,  // a match anywhere in the text (JSON Schema's "pattern", ECMAScript's search)
    full,    // the whole text (Python's re.fullmatch)
  };

  // Never throws: a pattern that does not compile (or is over 4,096 characters) has an
  // error() and matches nothing.
  Pattern(std::string_view pattern, Anchor anchor);

  const std::string& error() const { return error_; }
  // Thread-safe. error is set when the pattern has one, or when matching `text` takes more
  // work than any sensible pattern needs (nested repeats such as (.*)*).
  PatternMatch match(std::string_view text) const;

 private:
  struct Compiled;
  std::shared_ptr<const Compiled> compiled_;
  std::string error_;
};

}  // namespace gaggle::io
