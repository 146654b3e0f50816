#include "cli.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "io/error.h"
#include "io/terminal_text.h"

namespace gaggle::cli {

Runner not_built_yet(CLI::App& sub, const std::string& issue) {
  sub.allow_extras();
  std::string name = sub.get_name();
  return [name, issue]() -> int {
    throw Error(ErrorCode::usage, "cmd", "'gaggle " + name + "' is not built yet (" + issue + ")",
                "see 'gaggle --help' for the verbs that work today");
  };
}

void set_example(CLI::App& sub, const std::string& text) { sub.footer("\nExample:\n" + text); }

void warn(const std::string& message) { std::cerr << "gaggle: warning: " << io::terminal_safe(message) << "\n"; }

std::string human_bytes(std::uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

bool stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }
bool stdin_is_tty() { return ::isatty(STDIN_FILENO) == 1; }

}  // namespace gaggle::cli
