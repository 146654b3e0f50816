#pragma once
// Task data (design.md §4): JSONL, one example per line.
//   training:            {"input": str, "target": str}
//   rank classification: {"input": str, "choices": [str, ...], "label": int} (+ "target")
//   generation:          {"input": str, "target": str} scored by exact match
// A benchmark is a directory of task files (<task>.jsonl).
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace gaggle::tasks {

struct Example {
  std::string input;
  std::string target;                // for choices+label: choices[label] unless given
  std::vector<std::string> choices;  // non-empty: rank classification
  int label = -1;                    // index into choices, or -1 (generation)

  bool is_classification() const { return !choices.empty(); }
  bool operator==(const Example&) const = default;
};

// Reads a JSONL task file. Blank lines are skipped. Errors name "FILE:LINE: field 'x': ..."
// (invalid JSON, a missing/mistyped field, a label out of range, a target that is not
// choices[label]); a file with no examples is an Error. When only choices+label are given
// the target is filled in as choices[label].
std::vector<Example> read_task_file(const std::filesystem::path& jsonl);
// Writes examples as JSONL, atomically. Validates the same rules as the reader.
void write_task_file(const std::filesystem::path& jsonl, const std::vector<Example>& examples);
// One example as a JSON line (no newline) / parsed from one (source names it in errors).
std::string example_to_json_line(const Example& example);
Example example_from_json_line(std::string_view line, const std::string& source);

struct TaskSet {
  std::string benchmark;  // the directory name
  std::vector<std::pair<std::string, std::filesystem::path>> tasks;  // (task name, file), sorted by name
};

// A task file -> a TaskSet of one (benchmark = its parent directory's name, task = stem);
// a directory -> every *.jsonl directly inside it, sorted (benchmark = directory name).
// A directory without task files is an Error naming it.
TaskSet enumerate_tasks(const std::filesystem::path& file_or_dir);
// Several paths (as `--tasks A B ...`): one TaskSet per benchmark, in the order given;
// files in the same directory are grouped into that directory's TaskSet.
std::vector<TaskSet> enumerate_task_sets(const std::vector<std::filesystem::path>& paths);

}  // namespace gaggle::tasks
