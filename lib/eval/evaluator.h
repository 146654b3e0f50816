#pragma once
// Scoring methods on held-out tasks (design.md §2 "Evaluation"; issue #8, items 1–2).
//
// Rows with `choices`: rank classification — each choice (with EOS) is scored by teacher
// forcing, score = mean token cross-entropy, the lowest wins; accuracy. Rows with only a
// `target`: greedy decoding, exact match of the decoded text (surrounding whitespace
// ignored). A benchmark is a directory of task files; its score is the unweighted mean
// of its tasks' values (report.h). Every method sees the same examples in the same
// batches, so the same run twice gives identical numbers.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eval/method.h"
#include "eval/report.h"
#include "tasks/task_data.h"

namespace gaggle::model {
class BaseModel;
}
namespace gaggle::text {
class Tokenizer;
}

namespace gaggle::eval {

struct EvalProgress {
  std::string method, task;
  std::int64_t done = 0;   // examples scored so far in the whole run
  std::int64_t total = 0;  // examples the whole run scores (methods × examples)
};

struct EvalOptions {
  std::int64_t limit = 0;              // examples per task (0: all); fewer: a seeded sample, file order kept
  std::int64_t batch_size = 16;        // examples per forward pass
  std::uint64_t seed = 0;              // picks the --limit sample
  std::int64_t max_input_tokens = 1024;  // longer inputs keep their first tokens (and EOS)
  std::int64_t max_new_tokens = 0;     // generation: 0 = the batch's longest target + 8 tokens
  std::function<void(const EvalProgress&)> progress;  // after each batch (optional)
};

struct EvalTask {
  std::string name, benchmark;
  std::vector<tasks::Example> examples;  // after --limit
  std::int64_t available = 0;            // examples in the file
};

// Reads every task file of the sets (tasks::read_task_file) and applies the limit.
std::vector<EvalTask> load_tasks(const std::vector<tasks::TaskSet>& sets, const EvalOptions& options);

// Which examples a limit keeps: `limit` of `n` indices, ascending, a function of
// (seed, key) only. limit <= 0 or >= n: all.
std::vector<std::size_t> sample_indices(std::size_t n, std::int64_t limit, std::uint64_t seed, const std::string& key);

// Evaluates every method on every task (methods in order, tasks in order), appending to
// report.methods, report.rows and (for methods with a trace) report.routing. Leaves the
// model without adapters. Throws what the model, tokenizer and methods throw.
void evaluate(model::BaseModel& model, const text::Tokenizer& tokenizer, const std::vector<EvalTask>& tasks,
              const std::vector<Method*>& methods, const EvalOptions& options, Report& report);

}  // namespace gaggle::eval
