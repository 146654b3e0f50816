#pragma once
// Progress on stderr for long-running verbs (train-expert, train-gate, and any verb that
// reports through a lib/ callback): on a terminal one redrawn bar line
//   [#########.........]  420/1000  loss 1.2345  1830 tok/s  ETA 3m12s
// otherwise a plain line every `interval_seconds` (and at the end), and nothing at all
// when quiet. Events (validations, checkpoints) are printed as their own lines.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "train/progress.h"

namespace gaggle::cli {

class ProgressBar {
 public:
  enum class Style { bar, lines, quiet };
  // Style::bar when stderr is a terminal, Style::lines otherwise, Style::quiet if quiet.
  static Style default_style(bool quiet);

  ProgressBar(std::string label, Style style, double interval_seconds = 10.0);
  ~ProgressBar();

  // current of total done; `fields` are shown after the counts ("loss 1.23  840 tok/s");
  // eta_seconds < 0 hides the ETA.
  void update(int64_t current, int64_t total, const std::string& fields, double eta_seconds);
  // A line of its own (a validation result, a checkpoint), above the bar.
  void event(const std::string& line);
  // Ends the bar line (terminal) or prints the final plain line.
  void finish(const std::string& summary = {});

  static std::string format_duration(double seconds);  // "3m12s", "1h02m", "42s"

 private:
  void clear_line();
  std::string label_;
  Style style_;
  double interval_;
  std::chrono::steady_clock::time_point last_print_{};
  bool printed_ = false;
  bool bar_visible_ = false;
  std::string last_text_;
};

// Draws a training run's reports (lib/train/progress.h) on `bar`: step, loss, tokens/s
// and ETA; validations and checkpoints as event lines. If the environment variable
// GAGGLE_TEST_KILL_AT_STEP=N is set, the process SIGKILLs itself right after the report
// of step N (tests use it to kill a run at a known point after a checkpoint).
train::ProgressCallback training_progress(std::shared_ptr<ProgressBar> bar);

}  // namespace gaggle::cli
