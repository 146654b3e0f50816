// The synthetic suite: splits, templates, choices, and writing the suite directory.
#include "tasks/synthetic.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/error.h"
#include "tasks/detail/prompt.h"
#include "tasks/detail/synthetic_world.h"

namespace gaggle::tasks {
namespace fs = std::filesystem;

namespace {

constexpr int kMaxChoices = 4;

const detail::TaskDef& find_task(const std::string& name) {
  for (const auto& d : detail::task_defs())
    if (d.info.name == name) return d;
  std::string known;
  for (const auto& d : detail::task_defs()) known += (known.empty() ? "" : ", ") + d.info.name;
  throw_error(ErrorCode::not_found, "tasks", "the synthetic suite has no task '" + name + "'", "its tasks: " + known);
}

}  // namespace

const std::vector<SuiteTaskInfo>& suite_tasks() {
  static const std::vector<SuiteTaskInfo> infos = [] {
    std::vector<SuiteTaskInfo> v;
    for (const auto& d : detail::task_defs()) v.push_back(d.info);
    return v;
  }();
  return infos;
}

std::vector<Example> generate_task(const std::string& task, const std::string& split, int count, std::uint64_t seed) {
  if (split != "train" && split != "validation" && split != "eval")
    throw_error(ErrorCode::invalid, "tasks", "unknown split '" + split + "' (train, validation, eval)");
  if (count < 1) throw_error(ErrorCode::invalid, "tasks", "a split needs at least one example, got " + std::to_string(count));
  const detail::TaskDef& def = find_task(task);
  if (def.info.held_out && split != "eval")
    throw_error(ErrorCode::invalid, "tasks", "held-out task '" + task + "' has only an eval split",
                "no expert may be trained on a held-out task");
  detail::Rng rng(detail::fnv1a64(std::to_string(seed) + "/" + task + "/" + split));
  std::vector<Example> out;
  std::set<std::string> seen;
  for (int i = 0; i < count; ++i) {
    detail::Instance inst;
    // Draw until the instance belongs to this split (partitioned tasks) and, for the
    // scored splits, is new when the space allows.
    for (int attempt = 0;; ++attempt) {
      if (attempt > 5000)
        throw_error(ErrorCode::invalid, "tasks", "task '" + task + "': cannot draw a " + split + " instance");
      inst = def.make(rng);
      // Transfer and mixed tasks draw from their held-in tasks' evaluation bucket, so that
      // none of their instances was ever trained on.
      if (def.partition && !detail::in_split(inst.key, def.info.held_out ? "eval" : split)) continue;
      if (split != "train" && seen.count(inst.key) && attempt < 200) continue;
      break;
    }
    seen.insert(inst.key);
    const std::string& pattern = def.info.templates[static_cast<std::size_t>(rng.below(static_cast<int>(def.info.templates.size())))];
    Example e;
    e.input = detail::fill(pattern, inst.fields, task);
    e.target = inst.answer;
    if (split != "train") {
      std::vector<std::string> choices = {inst.answer};
      for (const std::string& d : inst.distractors) {
        if (static_cast<int>(choices.size()) >= kMaxChoices) break;
        if (!d.empty() && std::find(choices.begin(), choices.end(), d) == choices.end()) choices.push_back(d);
      }
      if (choices.size() < 2)
        throw_error(ErrorCode::invalid, "tasks", "task '" + task + "': an instance has no distinct distractor");
      rng.shuffle(choices);
      e.label = static_cast<int>(std::find(choices.begin(), choices.end(), inst.answer) - choices.begin());
      e.choices = std::move(choices);
    }
    out.push_back(std::move(e));
  }
  return out;
}

void make_task_suite(const fs::path& out, const SuiteOptions& o) {
  if (o.train < 1 || o.validation < 1 || o.eval < 1)
    throw_error(ErrorCode::invalid, "tasks", "every split needs at least one example per task");
  std::error_code ec;
  if (fs::exists(out, ec) && !o.replace)
    throw_error(ErrorCode::exists, "tasks", "'" + out.string() + "' already exists",
                "choose another --out, or replace it with --force");
  if (out.has_parent_path()) fs::create_directories(out.parent_path(), ec);
  io::AtomicDirectory dir(out);
  const fs::path& root = dir.path();
  for (const char* sub : {"train", "validation", "heldin", "heldout", "compose", "corpus"}) fs::create_directories(root / sub);

  std::string pretrain, tokenizer;
  std::set<std::string> tokenizer_lines;
  auto one_line = [](std::string s) {
    std::replace(s.begin(), s.end(), '\n', ' ');
    return s;
  };
  auto add_text = [&](const std::string& s) {
    std::string line = one_line(s);
    if (tokenizer_lines.insert(line).second) tokenizer += line + "\n";
  };

  nlohmann::ordered_json manifest;
  manifest["format_version"] = 1;
  manifest["generator"] = "gaggle debug make-tasks";
  manifest["seed"] = o.seed;
  manifest["counts"] = {{"train", o.train}, {"validation", o.validation}, {"eval", o.eval}};
  manifest["held_in"] = nlohmann::ordered_json::array();
  manifest["held_out"] = nlohmann::ordered_json::array();
  for (const SuiteTaskInfo& info : suite_tasks()) {
    nlohmann::ordered_json entry;
    entry["name"] = info.name;
    entry["description"] = info.description;
    entry["skills"] = info.skills;
    if (info.held_out) {
      entry["kind"] = info.kind;
      entry["benchmark"] = info.benchmark;
      entry["composes"] = info.composes;
    }
    entry["templates"] = info.templates;
    nlohmann::ordered_json files;
    auto write = [&](const std::string& split, const std::string& sub, int n) {
      auto examples = generate_task(info.name, split, n, o.seed);
      fs::path rel = fs::path(sub) / (info.name + ".jsonl");
      write_task_file(root / rel, examples);
      for (const Example& e : examples) {
        add_text(e.input);
        add_text(e.target);
        for (const auto& c : e.choices) add_text(c);
        if (split == "train") pretrain += one_line(e.input) + "\n";
      }
      files[split] = rel.string();
    };
    if (!info.held_out) {
      write("train", "train", o.train);
      write("validation", "validation", o.validation);
      write("eval", "heldin", o.eval);
    } else {
      write("eval", info.benchmark, o.eval);
    }
    entry["files"] = files;
    manifest[info.held_out ? "held_out" : "held_in"].push_back(entry);
    if (o.progress) o.progress(std::string(info.held_out ? "held-out " : "held-in  ") + info.name);
  }
  nlohmann::ordered_json lexicon;
  for (const auto& [en, z] : detail::world().zorbish) lexicon[en] = z;
  manifest["zorbish"] = lexicon;
  manifest["corpus"] = {{"pretrain", "corpus/pretrain.txt"}, {"tokenizer", "corpus/tokenizer.txt"}};
  io::write_file_atomic(root / "corpus" / "pretrain.txt", pretrain);
  io::write_file_atomic(root / "corpus" / "tokenizer.txt", tokenizer);
  io::write_file_atomic(root / "suite.json", manifest.dump(2) + "\n");
  dir.commit(o.replace);
}

}  // namespace gaggle::tasks
