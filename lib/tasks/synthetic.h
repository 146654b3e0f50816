#pragma once
// The embedded synthetic task suite (issue #9 item 1): a deterministic generator of
// prompted tasks in gaggle's JSONL, designed so that routing matters.
//
// Twelve held-in tasks each teach one skill over short word lists (reverse, sort,
// translate into the invented language "Zorbish", plural, count, add, category, filter,
// antonym, sentiment, fruit colour, next number). No expert is trained on a held-out
// task. The held-out benchmark ("heldout/") asks for what the paper's held-out sets ask
// for: a held-in skill under new wordings (transfer), and inputs of two segments that
// need two different experts (mixed), with distractors that give partial skill partial
// credit. The composition benchmark ("compose/") composes two skills on the same words
// (e.g. translate *and* reverse); its answer choices include the answers of each skill
// alone, so no single expert solves them. See examples/tasks/README.md.
//
// Layout written under the output directory:
//   suite.json                  what was generated: tasks, skills, templates, counts, seed
//   train/<task>.jsonl          held-in training data {"input", "target"}
//   validation/<task>.jsonl     held-in validation data (with choices and label)
//   heldin/<task>.jsonl         held-in evaluation data (rank classification)
//   heldout/<task>.jsonl        held-out evaluation data: transfer and mixed tasks
//   compose/<task>.jsonl        held-out evaluation data: composition tasks
//   corpus/pretrain.txt         the inputs of the held-in training files, one per line
//   corpus/tokenizer.txt        every text of the suite (inputs, targets, choices)
// The same seed and counts give byte-identical files.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "tasks/task_data.h"

namespace gaggle::tasks {

struct SuiteOptions {
  std::uint64_t seed = 0;
  int train = 1000;       // examples per held-in task
  int validation = 100;   // examples per held-in task
  int eval = 200;         // examples per held-in and per held-out task
  bool replace = false;   // replace an existing output directory
  std::function<void(const std::string&)> progress;  // one line per task written
};

struct SuiteTaskInfo {
  std::string name;
  bool held_out = false;
  // What a held-out task asks of the pool (the paper's held-out sets are of the first two
  // kinds; the third is a harder benchmark of our own):
  //   "transfer"  one held-in skill under a new surface (new wordings of the prompt)
  //   "mixed"     an input of two segments, each needing a different held-in skill, and an
  //               answer that puts the two results side by side
  //   "compose"   two held-in skills applied one after the other to the same words
  // Held-in tasks have kind "skill".
  std::string kind = "skill";
  // The directory (= benchmark) its evaluation file is written to: "heldin" for held-in
  // tasks, "heldout" for transfer and mixed tasks, "compose" for composition tasks.
  std::string benchmark = "heldin";
  std::vector<std::string> skills;    // held-in: {its skill}; held-out: the composed skills
  std::vector<std::string> composes;  // held-out: the held-in tasks whose skills it needs
  std::vector<std::string> templates; // prompt templates ("{list}" etc. are filled in)
  std::string description;
};

// Every task of the suite, held-in first, in a stable order.
const std::vector<SuiteTaskInfo>& suite_tasks();

// Generates one split of one task (split: "train", "validation", "eval"); deterministic in
// (seed, task, split). Training examples carry only input and target.
std::vector<Example> generate_task(const std::string& task, const std::string& split, int count, std::uint64_t seed);

// Writes the whole suite to `out` atomically (a temporary directory renamed into place).
// An existing `out` is an Error{exists} unless options.replace.
void make_task_suite(const std::filesystem::path& out, const SuiteOptions& options);

}  // namespace gaggle::tasks
