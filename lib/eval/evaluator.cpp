#include "eval/evaluator.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>

#include "io/error.h"
#include "model/scoring.h"
#include "model/base_model.h"
#include "text/tokenizer.h"
#include "eval/detail/room.h"

namespace gaggle::eval {
namespace {

std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::string kind_name(MethodKind kind) {
  switch (kind) {
    case MethodKind::base: return "base";
    case MethodKind::expert: return "expert";
    case MethodKind::single: return "single";
    case MethodKind::multitask: return "multitask";
    case MethodKind::router: return "router";
    case MethodKind::derived: return "derived";
  }
  return "unknown";
}

std::vector<std::int64_t> encode_input(const text::Tokenizer& tokenizer, const model::TokenFormat& format,
                                       const std::string& text, std::int64_t max_tokens) {
  return format.truncate_prompt(format.prompt(tokenizer.encode(text, /*add_eos=*/false)), max_tokens);
}

// Scores examples[idx] (all served by the same attached adapters): number correct.
std::int64_t score_group(model::BaseModel& model, const text::Tokenizer& tokenizer, const model::TokenFormat& format,
                         const std::vector<tasks::Example>& examples, const std::vector<std::size_t>& idx,
                         const std::vector<std::vector<std::int64_t>>& inputs, const EvalOptions& options) {
  std::int64_t correct = 0;
  std::vector<std::vector<std::int64_t>> cls_inputs, gen_inputs;
  std::vector<std::vector<std::vector<std::int64_t>>> cls_choices;
  std::vector<int> cls_labels;
  std::vector<std::string> gen_targets;
  std::size_t max_choices = 1, max_target = 0;
  for (std::size_t j : idx) {
    const auto& ex = examples[j];
    if (ex.is_classification()) {
      std::vector<std::vector<std::int64_t>> choices;
      for (const auto& c : ex.choices) choices.push_back(format.target(tokenizer.encode(c, /*add_eos=*/false)));
      max_choices = std::max(max_choices, choices.size());
      cls_inputs.push_back(inputs[j]);
      cls_choices.push_back(std::move(choices));
      cls_labels.push_back(ex.label);
    } else {
      gen_inputs.push_back(inputs[j]);
      gen_targets.push_back(trim(ex.target));
      max_target = std::max(max_target, tokenizer.encode(ex.target, true).size());
    }
  }
  if (!cls_inputs.empty()) {
    model::RankOptions rank;
    rank.max_rows = std::max<std::int64_t>(1, options.batch_size) * static_cast<std::int64_t>(max_choices);
    auto nll = model::rank_classification_nll(model, cls_inputs, cls_choices, rank);
    auto pred = model::rank_predictions(nll);
    for (std::size_t i = 0; i < pred.size(); ++i) correct += pred[i] == cls_labels[i];
  }
  if (!gen_inputs.empty()) {
    const std::int64_t max_new =
        options.max_new_tokens > 0 ? options.max_new_tokens : static_cast<std::int64_t>(max_target) + 8;
    const model::TokenRows out = model.generate(gen_inputs, max_new);
    for (std::size_t b = 0; b < out.size(); ++b) correct += trim(tokenizer.decode(out[b], true)) == gen_targets[b];
  }
  return correct;
}

}  // namespace

std::vector<std::size_t> sample_indices(std::size_t n, std::int64_t limit, std::uint64_t seed, const std::string& key) {
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  if (limit <= 0 || static_cast<std::size_t>(limit) >= n) return idx;
  std::mt19937_64 rng(seed ^ fnv1a(key));
  // Partial Fisher–Yates with plain modulo: the same indices on every platform.
  for (std::size_t i = 0; i < static_cast<std::size_t>(limit); ++i) {
    const std::size_t j = i + static_cast<std::size_t>(rng() % (n - i));
    std::swap(idx[i], idx[j]);
  }
  idx.resize(static_cast<std::size_t>(limit));
  std::sort(idx.begin(), idx.end());
  return idx;
}

std::vector<EvalTask> load_tasks(const std::vector<tasks::TaskSet>& sets, const EvalOptions& options) {
  std::vector<EvalTask> out;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& set : sets) {
    for (const auto& [name, path] : set.tasks) {
      if (!seen.insert({set.benchmark, name}).second)
        throw_error(ErrorCode::usage, kRoom, "task '" + set.benchmark + "/" + name + "' is given twice");
      EvalTask task;
      task.name = name;
      task.benchmark = set.benchmark;
      auto all = tasks::read_task_file(path);
      task.available = static_cast<std::int64_t>(all.size());
      for (std::size_t i : sample_indices(all.size(), options.limit, options.seed, set.benchmark + "/" + name))
        task.examples.push_back(std::move(all[i]));
      out.push_back(std::move(task));
    }
  }
  if (out.empty()) throw_error(ErrorCode::usage, kRoom, "no tasks to evaluate", "pass --tasks FILE_OR_DIR...");
  return out;
}

void evaluate(model::BaseModel& model, const text::Tokenizer& tokenizer, const std::vector<EvalTask>& tasks,
              const std::vector<Method*>& methods, const EvalOptions& options, Report& report) {
  if (model.vocab_size() < tokenizer.vocab_size())
    throw_error(ErrorCode::mismatch, kRoom,
                "the tokenizer has " + std::to_string(tokenizer.vocab_size()) + " ids but the model's vocabulary " +
                    std::to_string(model.vocab_size()),
                "use the base model's own tokenizer (spiece.model / tokenizer.model)");
  const model::TokenFormat format = model.token_format(tokenizer.eos_id());
  const std::size_t batch_size = static_cast<std::size_t>(std::max<std::int64_t>(1, options.batch_size));
  EvalProgress progress;
  for (const auto& t : tasks) progress.total += static_cast<std::int64_t>(t.examples.size());
  progress.total *= static_cast<std::int64_t>(methods.size());

  // Inputs are tokenized once for all methods.
  std::vector<std::vector<std::vector<std::int64_t>>> encoded(tasks.size());
  for (std::size_t t = 0; t < tasks.size(); ++t)
    for (const auto& ex : tasks[t].examples) encoded[t].push_back(encode_input(tokenizer, format, ex.input, options.max_input_tokens));

  for (Method* method : methods) {
    report.methods.push_back({method->name(), kind_name(method->kind()), method->zero_shot(), {}});
    progress.method = method->name();
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      const auto& task = tasks[t];
      progress.task = task.name;
      method->reset_trace();
      std::int64_t correct = 0;
      bool any_cls = false, any_gen = false;
      for (const auto& ex : task.examples) (ex.is_classification() ? any_cls : any_gen) = true;
      for (std::size_t start = 0; start < task.examples.size(); start += batch_size) {
        const std::size_t end = std::min(task.examples.size(), start + batch_size);
        std::vector<std::vector<std::int64_t>> batch_inputs(encoded[t].begin() + start, encoded[t].begin() + end);
        std::vector<int> groups = method->assign(model, batch_inputs);
        std::set<int> distinct(groups.begin(), groups.end());
        for (int g : distinct) {
          std::vector<std::size_t> idx;
          for (std::size_t i = start; i < end; ++i)
            if (groups[i - start] == g) idx.push_back(i);
          method->attach(model, g);
          try {
            correct += score_group(model, tokenizer, format, task.examples, idx, encoded[t], options);
          } catch (const Error& e) {
            throw e.with_context("method '" + method->name() + "', task '" + task.benchmark + "/" + task.name + "'");
          }
        }
        progress.done += static_cast<std::int64_t>(end - start);
        if (options.progress) options.progress(progress);
      }
      ScoreRow row;
      row.method = method->name();
      row.task = task.name;
      row.benchmark = task.benchmark;
      row.metric = any_gen && !any_cls ? "exact_match" : "accuracy";
      row.n = static_cast<std::int64_t>(task.examples.size());
      row.value = row.n ? static_cast<double>(correct) / static_cast<double>(row.n) : 0.0;
      report.rows.push_back(row);
      if (RoutingTrace* trace = method->trace())
        report.routing.push_back({method->name(), task.name, task.benchmark, trace->experts, trace->counts});
    }
  }
  model.clear_adapters();
}

}  // namespace gaggle::eval
