#pragma once
// The progress display of the hub verbs (publish, pull): a one-line bar on stderr when
// it is a terminal, nothing otherwise (scripts use --json on stdout).
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "cli.h"
#include "hub/progress.h"
#include "io/terminal_text.h"

namespace gaggle::cli {

// A callback drawing "\r<phase> <item> [#####.....]  42% 1.2 MiB / 2.9 MiB" at most
// ten times a second; an empty function when stderr is not a terminal or `quiet`.
inline hub::ProgressFn hub_progress_bar(bool quiet) {
  if (quiet || !stderr_is_tty()) return {};
  struct State {
    std::chrono::steady_clock::time_point last{};
    bool drawn = false;
  };
  auto state = std::make_shared<State>();
  return [state](const hub::Progress& p) {
    auto now = std::chrono::steady_clock::now();
    bool done = p.total && p.done >= p.total;
    if (!done && now - state->last < std::chrono::milliseconds(100)) return;
    state->last = now;
    std::string item = io::terminal_safe(p.item);  // a URL a manifest gave (io/terminal_text.h)
    if (item.size() > 40) item = "..." + item.substr(item.size() - 37);
    std::string amount;
    if (p.unit == "bytes")
      amount = human_bytes(p.done) + (p.total ? " / " + human_bytes(p.total) : "");
    else
      amount = std::to_string(p.done) + (p.total ? "/" + std::to_string(p.total) : "") + " " + p.unit;
    if (p.total) {
      int width = 20, filled = static_cast<int>(width * std::min<double>(1.0, double(p.done) / double(p.total)));
      std::fprintf(stderr, "\r\033[K%-8s %-40s [%s%s] %3d%% %s", p.phase.c_str(), item.c_str(),
                   std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                   static_cast<int>(100.0 * std::min<double>(1.0, double(p.done) / double(p.total))), amount.c_str());
    } else {
      std::fprintf(stderr, "\r\033[K%-8s %-40s %s", p.phase.c_str(), item.c_str(), amount.c_str());
    }
    state->drawn = true;
    std::fflush(stderr);
  };
}

// Ends the bar's line (call before printing results).
inline void hub_progress_done() {
  if (stderr_is_tty()) std::fprintf(stderr, "\r\033[K");
}

}  // namespace gaggle::cli
