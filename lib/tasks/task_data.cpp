// Task data JSONL: reading with errors that name file, line and field; atomic writing.
#include "tasks/task_data.h"

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/error.h"
#include "io/json_file.h"

namespace gaggle::tasks {
namespace fs = std::filesystem;

namespace {

constexpr const char* kRoom = "tasks";

[[noreturn]] void field_error(const std::string& source, const std::string& field, const std::string& what) {
  throw_error(ErrorCode::invalid, kRoom, source + ": field '" + field + "': " + what,
              "each line must be {\"input\": str, \"target\": str} or {\"input\": str, \"choices\": [str, ...], "
              "\"label\": int}");
}

// The rules both the reader and the writer enforce.
void validate(Example& e, const std::string& source, bool fill_target) {
  if (e.choices.empty()) {
    if (e.label != -1) field_error(source, "label", "a label needs 'choices'");
    return;
  }
  if (e.label < 0 || e.label >= static_cast<int>(e.choices.size()))
    field_error(source, "label",
                "label " + std::to_string(e.label) + " is out of range for " + std::to_string(e.choices.size()) +
                    " choices");
  if (e.choices.size() < 2) field_error(source, "choices", "rank classification needs at least 2 choices");
  if (fill_target && e.target.empty()) e.target = e.choices[static_cast<std::size_t>(e.label)];
  if (e.target != e.choices[static_cast<std::size_t>(e.label)])
    field_error(source, "target", "'" + e.target + "' is not choices[label] ('" + e.choices[static_cast<std::size_t>(e.label)] + "')");
}

}  // namespace

Example example_from_json_line(std::string_view line, const std::string& source) {
  nlohmann::json j;
  if (std::string why = io::json_nesting_problem(line); !why.empty())
    throw_error(ErrorCode::invalid, kRoom, source + ": " + why);
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    // parse_error, or out_of_range for a number too large for a double, e.g. 1e999 (found
    // by fuzz/run.sh pool_tasks: caught as parse_error alone, it escaped the caller).
    // "[json.exception.parse_error.101] parse error at line 1, column 5: ..." -> after "]"
    std::string what = e.what();
    auto bracket = what.find("] ");
    throw_error(ErrorCode::invalid, kRoom,
                source + ": invalid JSON: " + (bracket == std::string::npos ? what : what.substr(bracket + 2)),
                "task files are JSONL: one JSON object per line");
  }
  if (!j.is_object()) throw_error(ErrorCode::invalid, kRoom, source + ": a line must be a JSON object, got " + j.type_name());
  Example e;
  auto it = j.find("input");
  if (it == j.end()) field_error(source, "input", "missing");
  if (!it->is_string()) field_error(source, "input", std::string("must be a string, got ") + it->type_name());
  e.input = it->get<std::string>();
  if ((it = j.find("target")) != j.end() && !it->is_null()) {
    if (!it->is_string()) field_error(source, "target", std::string("must be a string, got ") + it->type_name());
    e.target = it->get<std::string>();
  }
  bool has_choices = false;
  if ((it = j.find("choices")) != j.end() && !it->is_null()) {
    has_choices = true;
    if (!it->is_array()) field_error(source, "choices", std::string("must be an array of strings, got ") + it->type_name());
    for (std::size_t i = 0; i < it->size(); ++i) {
      const auto& c = (*it)[i];
      if (!c.is_string())
        field_error(source, "choices", "element " + std::to_string(i) + " must be a string, got " + c.type_name());
      e.choices.push_back(c.get<std::string>());
    }
    if (e.choices.empty()) field_error(source, "choices", "is empty");
  }
  if ((it = j.find("label")) != j.end() && !it->is_null()) {
    if (!it->is_number_integer())
      field_error(source, "label", std::string("must be an integer, got ") + it->type_name());
    auto v = it->get<std::int64_t>();
    if (v < 0 || v > 1'000'000) field_error(source, "label", "label " + std::to_string(v) + " is out of range");
    e.label = static_cast<int>(v);
  }
  if (has_choices && e.label < 0) field_error(source, "label", "missing (rows with 'choices' need the index of the answer)");
  if (!has_choices && j.find("target") == j.end()) field_error(source, "target", "missing (a row needs 'target' or 'choices' and 'label')");
  validate(e, source, true);
  return e;
}

std::string example_to_json_line(const Example& example) {
  Example e = example;
  validate(e, "example", true);
  nlohmann::ordered_json j;
  j["input"] = e.input;
  j["target"] = e.target;
  if (!e.choices.empty()) {
    j["choices"] = e.choices;
    j["label"] = e.label;
  }
  try {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::type_error&) {
    throw_error(ErrorCode::invalid, kRoom, "example with input '" + e.input.substr(0, 40) + "...' is not valid UTF-8");
  }
}

std::vector<Example> read_task_file(const fs::path& jsonl) {
  std::string text = io::read_file(jsonl);
  std::vector<Example> out;
  std::size_t pos = 0;
  std::size_t line_no = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::size_t end = nl == std::string::npos ? text.size() : nl;
    std::string_view line(text.data() + pos, end - pos);
    ++line_no;
    pos = nl == std::string::npos ? text.size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    out.push_back(example_from_json_line(line, jsonl.string() + ":" + std::to_string(line_no)));
  }
  if (out.empty())
    throw_error(ErrorCode::invalid, kRoom, jsonl.string() + ": no examples (the file is empty)",
                "a task file needs at least one JSON line {\"input\": ..., \"target\": ...}");
  return out;
}

void write_task_file(const fs::path& jsonl, const std::vector<Example>& examples) {
  if (examples.empty())
    throw_error(ErrorCode::invalid, kRoom, jsonl.string() + ": refusing to write a task file with no examples");
  std::string text;
  for (std::size_t i = 0; i < examples.size(); ++i) {
    try {
      text += example_to_json_line(examples[i]);
    } catch (const Error& e) {
      throw e.with_context(jsonl.string() + ": example " + std::to_string(i + 1));
    }
    text += '\n';
  }
  io::write_file_atomic(jsonl, text);
}

TaskSet enumerate_tasks(const fs::path& file_or_dir) {
  std::error_code ec;
  TaskSet set;
  if (fs::is_regular_file(file_or_dir, ec)) {
    fs::path abs = fs::absolute(file_or_dir, ec);
    set.benchmark = abs.parent_path().filename().string();
    set.tasks.emplace_back(file_or_dir.stem().string(), file_or_dir);
    return set;
  }
  if (!fs::is_directory(file_or_dir, ec))
    throw_error(ErrorCode::not_found, kRoom, "task file or directory '" + file_or_dir.string() + "' does not exist");
  fs::path abs = fs::absolute(file_or_dir, ec);
  if (abs.filename().empty()) abs = abs.parent_path();
  set.benchmark = abs.filename().string();
  for (const auto& entry : fs::directory_iterator(file_or_dir, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".jsonl")
      set.tasks.emplace_back(entry.path().stem().string(), entry.path());
  }
  if (ec) throw_error(ErrorCode::io, kRoom, "cannot list '" + file_or_dir.string() + "': " + ec.message());
  if (set.tasks.empty())
    throw_error(ErrorCode::not_found, kRoom, "'" + file_or_dir.string() + "' holds no task files (*.jsonl)",
                "a benchmark is a directory of <task>.jsonl files");
  std::sort(set.tasks.begin(), set.tasks.end());
  return set;
}

std::vector<TaskSet> enumerate_task_sets(const std::vector<fs::path>& paths) {
  std::vector<TaskSet> out;
  for (const fs::path& p : paths) {
    TaskSet one = enumerate_tasks(p);
    auto same = std::find_if(out.begin(), out.end(), [&](const TaskSet& s) { return s.benchmark == one.benchmark; });
    if (same == out.end()) {
      out.push_back(std::move(one));
      continue;
    }
    for (auto& t : one.tasks)
      if (std::find(same->tasks.begin(), same->tasks.end(), t) == same->tasks.end()) same->tasks.push_back(std::move(t));
  }
  return out;
}

}  // namespace gaggle::tasks
