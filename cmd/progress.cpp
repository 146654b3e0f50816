#include "progress.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli.h"

namespace gaggle::cli {

ProgressBar::Style ProgressBar::default_style(bool quiet) {
  if (quiet) return Style::quiet;
  return stderr_is_tty() ? Style::bar : Style::lines;
}

ProgressBar::ProgressBar(std::string label, Style style, double interval_seconds)
    : label_(std::move(label)), style_(style), interval_(interval_seconds) {}

ProgressBar::~ProgressBar() {
  if (bar_visible_) std::cerr << "\n" << std::flush;
}

std::string ProgressBar::format_duration(double seconds) {
  if (seconds < 0) seconds = 0;
  auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%llds", s);
  return buf;
}

void ProgressBar::clear_line() {
  if (bar_visible_) {
    std::cerr << "\r\033[K";
    bar_visible_ = false;
  }
}

void ProgressBar::update(int64_t current, int64_t total, const std::string& fields, double eta_seconds) {
  if (style_ == Style::quiet) return;
  auto now = std::chrono::steady_clock::now();
  std::string counts = std::to_string(current) + "/" + std::to_string(total);
  std::string eta = eta_seconds >= 0 ? "  ETA " + format_duration(eta_seconds) : "";
  if (style_ == Style::bar) {
    const int width = 24;
    int filled = total > 0 ? static_cast<int>(width * current / total) : 0;
    std::string bar(static_cast<size_t>(filled), '#');
    bar += std::string(static_cast<size_t>(width - filled), '.');
    std::cerr << "\r\033[K" << label_ << " [" << bar << "] " << counts << "  " << fields << eta << std::flush;
    bar_visible_ = true;
    return;
  }
  bool due = !printed_ || std::chrono::duration<double>(now - last_print_).count() >= interval_ || current == total;
  last_text_ = label_ + ": " + counts + "  " + fields + eta;
  if (!due) return;
  std::cerr << last_text_ << "\n" << std::flush;
  printed_ = true;
  last_print_ = now;
}

void ProgressBar::event(const std::string& line) {
  if (style_ == Style::quiet) return;
  clear_line();
  std::cerr << label_ << ": " << line << "\n" << std::flush;
}

void ProgressBar::finish(const std::string& summary) {
  if (style_ == Style::quiet) return;
  clear_line();
  if (!summary.empty()) std::cerr << label_ << ": " << summary << "\n" << std::flush;
}

train::ProgressCallback training_progress(std::shared_ptr<ProgressBar> bar) {
  int64_t kill_at = -1;
  if (const char* k = std::getenv("GAGGLE_TEST_KILL_AT_STEP")) kill_at = std::atoll(k);
  return [bar, kill_at](const train::TrainProgress& p) {
    char buf[256];
    if (p.phase == "train" || p.phase == "valid") {
      if (p.phase == "valid") {
        std::snprintf(buf, sizeof buf, "step %lld: valid loss %.4f", static_cast<long long>(p.step), p.valid_loss.value_or(0));
        std::string line = buf;
        if (p.valid_accuracy) {
          std::snprintf(buf, sizeof buf, ", accuracy %.2f%%", *p.valid_accuracy * 100);
          line += buf;
        }
        if (p.is_best) line += " (best so far)";
        bar->event(line);
      }
      std::snprintf(buf, sizeof buf, "loss %.4f  lr %.2e  %.0f tok/s", p.loss, p.lr, p.tokens_per_second);
      bar->update(p.step, p.total_steps, buf, p.eta_seconds);
      if (kill_at >= 0 && p.step == kill_at) std::raise(SIGKILL);
    } else if (p.phase == "done") {
      bar->finish();
    } else if (p.phase == "avg_act") {
      bar->event("average activations over " + std::to_string(p.total_steps) + " examples");
    } else if (p.phase == "embed") {
      bar->event("retrieval embeddings of " + std::to_string(p.total_steps) + " inputs");
    }
  };
}

}  // namespace gaggle::cli
