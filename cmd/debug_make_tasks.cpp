// gaggle debug make-tasks — writes the embedded synthetic task suite (12 held-in tasks,
// 8 held-out compositions) deterministically from a seed.
#include <cstdio>
#include <iostream>

#include "io/error.h"
#include "tasks/synthetic.h"
#include "verbs.h"

namespace gaggle::cli {

Runner setup_debug_make_tasks(CLI::App& sub) {
  auto opt = std::make_shared<tasks::SuiteOptions>();
  auto out = std::make_shared<std::string>();
  auto list = std::make_shared<bool>(false);
  sub.add_option("--out", *out, "Output directory (must not exist unless --force)");
  sub.add_option("--seed", opt->seed, "Seed: the same seed and counts give byte-identical files")->capture_default_str();
  sub.add_option("--train", opt->train, "Training examples per held-in task")->capture_default_str()->check(CLI::Range(1, 10000000));
  sub.add_option("--validation", opt->validation, "Validation examples per held-in task")->capture_default_str()->check(CLI::Range(1, 10000000));
  sub.add_option("--eval", opt->eval, "Evaluation examples per task")->capture_default_str()->check(CLI::Range(1, 10000000));
  sub.add_flag("--force", opt->replace, "Replace an existing output directory");
  sub.add_flag("--list", *list, "Describe the tasks and exit");
  set_example(sub,
              "  gaggle debug make-tasks --out suite --seed 0\n"
              "  gaggle train-expert --base examples/base --data suite/train/reverse.jsonl ...\n"
              "  gaggle eval --base examples/base --tasks suite/heldout --report report.json");
  return [opt, out, list]() -> int {
    if (*list) {
      for (const auto& t : tasks::suite_tasks()) {
        std::string skills;
        for (const auto& s : t.composes) skills += (skills.empty() ? "" : " + ") + s;
        std::printf("%-9s %-18s %s%s\n", t.held_out ? "held-out" : "held-in", t.name.c_str(), t.description.c_str(),
                    skills.empty() ? "" : ("  [" + skills + "]").c_str());
      }
      return kExitSuccess;
    }
    if (out->empty()) throw_error(ErrorCode::usage, "cli", "--out DIR is required");
    opt->progress = [](const std::string& line) { std::cerr << "  " << line << "\n"; };
    std::cerr << "writing the synthetic task suite (seed " << opt->seed << ") to " << *out << "\n";
    tasks::make_task_suite(*out, *opt);
    std::size_t held_in = 0, held_out = 0;
    for (const auto& t : tasks::suite_tasks()) (t.held_out ? held_out : held_in)++;
    std::printf("%zu held-in tasks (%d train, %d validation, %d eval examples each) and %zu held-out tasks (%d eval) -> %s\n",
                held_in, opt->train, opt->validation, opt->eval, held_out, opt->eval, out->c_str());
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
