// gaggle eval — the paper's table on any pool, in one command (issue #8). The work is in
// lib/eval/run.h; this file maps flags to RunOptions, draws progress and writes/prints
// the report (OUT.json, OUT.md, OUT.csv, OUT.html + routing plots).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "eval/report.h"
#include "eval/routing_plot.h"
#include "eval/run.h"
#include "io/error.h"
#include "model/runtime.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

struct EvalFlags {
  eval::RunOptions opt;
  std::string base, pool, trust, multitask, report;
  std::vector<std::string> tasks, routers;
  int threads = 0;
  bool quiet = false;
  bool json = false;
};

// stderr progress: a redrawn bar on a terminal, otherwise a line per method and task.
std::function<void(const eval::EvalProgress&)> progress_printer(bool quiet) {
  if (quiet) return {};
  const bool tty = stderr_is_tty();
  auto last = std::make_shared<std::string>();
  return [tty, last](const eval::EvalProgress& p) {
    const std::string where = p.method + " / " + p.task;
    if (tty) {
      const int width = 30;
      const int fill = p.total ? static_cast<int>(width * p.done / p.total) : width;
      std::fprintf(stderr, "\r[%s%s] %lld/%lld  %-50.50s", std::string(fill, '#').c_str(),
                   std::string(width - fill, '.').c_str(), static_cast<long long>(p.done),
                   static_cast<long long>(p.total), where.c_str());
      if (p.done == p.total) std::fprintf(stderr, "\n");
    } else if (where != *last || p.done == p.total) {
      std::fprintf(stderr, "eval: %lld/%lld %s\n", static_cast<long long>(p.done), static_cast<long long>(p.total),
                   where.c_str());
    }
    *last = where;
  };
}

}  // namespace

Runner setup_eval(CLI::App& sub) {
  auto f = std::make_shared<EvalFlags>();
  auto& o = f->opt;
  sub.add_option("--model", o.model_dirs, "A routed model directory made by 'gaggle assemble'; repeatable");
  sub.add_option("--base", f->base, "Base model directory (Hugging Face T5 or Llama checkpoint with its tokenizer)");
  sub.add_option("--expert", o.experts, "Evaluate the base with this expert (a directory, or a name in --pool); repeatable");
  sub.add_option("--pool", f->pool, "Pool directory (pool.json + bundles) or a directory of expert directories");
  sub.add_option("--trust", f->trust,
                 "Allowed signers to verify the --pool against (default: the trust file the pool was pulled with, "
                 "POOL/.gaggle/allowed_signers; verification is cached by file identity)");
  sub.add_option("--routers", f->routers, "Routers over the pool: phatgoose,arrow,average-activation,retrieval,merged,merged-factors,smear")
      ->delimiter(',');
  sub.add_option("--top-k", o.top_k, "Experts per token for phatgoose, arrow, average-activation")->capture_default_str();
  sub.add_flag("--single-experts", o.single_experts,
               "Evaluate every pool expert alone; adds Oracle and Best individual (not zero-shot)");
  sub.add_option("--multitask", f->multitask, "Add a Multitask row: an expert trained on all held-in data");
  sub.add_flag("--with-base", o.with_base, "Add the base model's row when other methods are evaluated");
  sub.add_option("--tasks", f->tasks, "Task files (JSONL) and benchmark directories of task files")->required();
  sub.add_option("--report", f->report, "OUT.json; OUT.md, OUT.csv, OUT.html and OUT.routing/ are written beside it");
  sub.add_option("--limit", o.eval.limit, "Examples per task (0: all); fewer: a sample chosen by --seed")
      ->capture_default_str();
  sub.add_option("--batch-size", o.eval.batch_size, "Examples per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
  sub.add_option("--seed", o.eval.seed, "Seed of the --limit sample")->capture_default_str();
  sub.add_option("--max-input-tokens", o.eval.max_input_tokens, "Longer inputs are cut")->capture_default_str();
  sub.add_option("--max-new-tokens", o.eval.max_new_tokens, "Generation length (0: longest target + 8)")
      ->capture_default_str();
  sub.add_option("--device", o.device, "cpu | cuda | cuda:N")->capture_default_str();
  sub.add_option("--threads", f->threads, "Compute threads (0: every core)")->capture_default_str();
  sub.add_flag("--json", f->json, "Print the JSON report on stdout instead of the table");
  sub.add_flag("-q,--quiet", f->quiet, "No progress on stderr");
  set_example(sub,
              "  gaggle eval --model routed-phatgoose --tasks held-out/ --report out/routed.json\n"
              "  gaggle eval --base t5-base --expert experts/sst2 --tasks held-out/ --report out/base.json\n"
              "  gaggle eval --base t5-base --pool pool --routers phatgoose,arrow,average-activation,retrieval,merged \\\n"
              "      --single-experts --tasks t0-held-out/ bbh/ --limit 200 --report out/table.json");
  return [f]() -> int {
    auto& o = f->opt;
    o.base_dir = f->base;
    o.pool_dir = f->pool;
    if (!f->trust.empty() && f->pool.empty())
      throw Error(ErrorCode::usage, "cmd", "--trust verifies a --pool: give the pool too");
    o.trust_file = f->trust;
    o.multitask_dir = f->multitask;
    o.routers = f->routers;
    for (const auto& t : f->tasks) o.tasks.emplace_back(t);
    o.gaggle_version = GAGGLE_VERSION;
    o.eval.progress = progress_printer(f->quiet);
    model::configure_runtime({f->threads, o.device});
    const auto start = std::chrono::steady_clock::now();
    eval::Report report = eval::run_eval(o);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    if (!f->report.empty()) {
      auto written = eval::write_report(report, f->report);
      std::filesystem::path html = f->report;
      html.replace_extension(".html");
      auto pages = eval::write_html_report(report, html);
      if (!f->quiet) {
        std::fprintf(stderr, "eval: wrote %s, %s, %s, %s (%zu routing plots) in %.1f s\n", written[0].c_str(),
                     written[1].c_str(), written[2].c_str(), pages[0].c_str(), pages.size() - 1, seconds);
      }
    }
    if (f->json) std::cout << eval::report_json(report).dump(2) << "\n";
    else std::cout << eval::report_markdown(report);
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
