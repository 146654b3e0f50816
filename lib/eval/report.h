#pragma once
// The evaluation report (issue #8, item 3): the paper's table for any pool. Torch-free.
//
//   OUT.json  {"rows": [{"method", "task", "benchmark", "metric", "value", "n"}...],
//              "means": [{"method", "benchmark", "value", "tasks"}...],
//              "meta": {gaggle version, base fingerprint, pool commit, experts and
//                       signers, flags, seed, methods (name, kind, zero_shot)}}
//   OUT.md    the Markdown table in the paper's layout: rows = methods (the paper's
//             order), columns = tasks then each benchmark's mean, accuracy in %.
//   OUT.csv   method,task,benchmark,metric,value,n (the rows, then the means as task "mean")
// `value` is in [0, 1]; `n` is the number of examples scored. No clock time is written:
// the same evaluation gives byte-identical files.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gaggle::eval {

// Method names of single experts are this prefix + "name@version" (the trace's label).
inline constexpr const char* kSingleMethodPrefix = "Single ";

struct ScoreRow {
  std::string method, task, benchmark;
  std::string metric;  // "accuracy" (rank classification) or "exact_match" (generation)
  double value = 0;    // in [0, 1]
  std::int64_t n = 0;  // examples scored
};

struct MeanRow {
  std::string method, benchmark;
  double value = 0;        // unweighted mean of the benchmark's task values
  std::int64_t tasks = 0;  // how many tasks it averages
};

struct MethodInfo {
  std::string name;
  std::string kind;       // base, expert, single, multitask, router, derived
  bool zero_shot = true;  // false: Oracle, Best individual, single experts, Multitask
  std::string note;       // e.g. Best individual: which expert
};

// Token slots routed to each expert per module for one (method, task).
struct TaskRouting {
  std::string method, task, benchmark;
  std::vector<std::string> experts;
  std::map<std::string, std::vector<std::int64_t>> counts;  // module -> per expert
};

struct Report {
  std::vector<MethodInfo> methods;  // in evaluation order
  std::vector<ScoreRow> rows;
  std::vector<TaskRouting> routing;
  nlohmann::ordered_json meta = nlohmann::ordered_json::object();
};

// From the rows of kind "single": "Oracle" (per task the best single expert's value, n of
// that task) and "Best individual" (the one expert with the best mean over benchmark
// means, all its rows). Both not zero-shot. No single rows: nothing is added.
void derive_oracle_and_best(Report& report);

// Per task, the single expert that scored best on it (first on ties): task -> expert
// method name. Empty without single rows.
std::map<std::string, std::string> oracle_experts(const Report& report);

// Unweighted per-benchmark means of each method's task values, in method order and then
// benchmark order (the order benchmarks first appear in the rows).
std::vector<MeanRow> benchmark_means(const Report& report);

nlohmann::ordered_json report_json(const Report& report);
// The paper's layout. Single-expert rows are summarised by Oracle / Best individual and
// left to the JSON when there are more than `max_single_rows` of them.
std::string report_markdown(const Report& report, std::size_t max_single_rows = 8);
std::string report_csv(const Report& report);

// Writes OUT.json, OUT.md and OUT.csv (OUT = json_path without its extension), each
// atomically. Returns the paths written.
std::vector<std::filesystem::path> write_report(const Report& report, const std::filesystem::path& json_path);

// Sorts method names into the paper's table order: Base, named experts, Multitask, Oracle,
// Best individual, Retrieval, Average activation, Arrow, Merged, SMEAR, PHATGOOSE, then
// single experts (stable within a kind).
std::vector<MethodInfo> table_order(const std::vector<MethodInfo>& methods);

}  // namespace gaggle::eval
