#include "eval/report.h"

#include "eval/routing_plot.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>

#include "io/atomic_file.h"
#include "io/error.h"

namespace fs = std::filesystem;

namespace gaggle::eval {
namespace {

constexpr const char* kOracle = "Oracle";
constexpr const char* kBestIndividual = "Best individual";

int order_rank(const MethodInfo& m) {
  if (m.kind == "base") return 0;
  if (m.kind == "expert") return 1;
  if (m.kind == "multitask") return 2;
  if (m.name == kOracle) return 3;
  if (m.name == kBestIndividual) return 4;
  if (m.name == "Retrieval") return 5;
  if (m.name == "Average activation") return 6;
  if (m.name == "Arrow") return 7;
  if (m.name == "Merged" || m.name == "Merged (averaged A, B)") return 8;
  if (m.name == "SMEAR") return 9;
  if (m.name == "PHATGOOSE") return 11;
  if (m.kind == "single") return 12;
  return 10;
}

// Benchmarks in first-appearance order, with their tasks in first-appearance order.
std::vector<std::pair<std::string, std::vector<std::string>>> layout(const Report& report) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& r : report.rows) {
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& b) { return b.first == r.benchmark; });
    if (it == out.end()) {
      out.push_back({r.benchmark, {}});
      it = out.end() - 1;
    }
    if (std::find(it->second.begin(), it->second.end(), r.task) == it->second.end()) it->second.push_back(r.task);
  }
  return out;
}

const ScoreRow* find_row(const Report& report, const std::string& method, const std::string& benchmark,
                         const std::string& task) {
  for (const auto& r : report.rows)
    if (r.method == method && r.benchmark == benchmark && r.task == task) return &r;
  return nullptr;
}

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v * 100.0);
  return buf;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return buf;
}

}  // namespace

std::vector<MethodInfo> table_order(const std::vector<MethodInfo>& methods) {
  std::vector<MethodInfo> out = methods;
  std::stable_sort(out.begin(), out.end(),
                   [](const MethodInfo& a, const MethodInfo& b) { return order_rank(a) < order_rank(b); });
  return out;
}

std::map<std::string, std::string> oracle_experts(const Report& report) {
  std::map<std::string, std::string> best;
  std::map<std::string, double> value;
  std::set<std::string> singles;
  for (const auto& m : report.methods)
    if (m.kind == "single") singles.insert(m.name);
  for (const auto& r : report.rows) {
    if (!singles.count(r.method)) continue;
    const std::string key = r.benchmark + "/" + r.task;
    auto it = value.find(key);
    if (it == value.end() || r.value > it->second) {
      value[key] = r.value;
      best[key] = r.method;
    }
  }
  return best;
}

void derive_oracle_and_best(Report& report) {
  std::vector<std::string> singles;
  for (const auto& m : report.methods)
    if (m.kind == "single") singles.push_back(m.name);
  if (singles.empty()) return;
  for (const auto& m : report.methods)
    if (m.name == kOracle || m.name == kBestIndividual) return;  // already derived

  // Best individual: the single expert with the highest mean over benchmark means.
  auto means = benchmark_means(report);
  std::string best;
  double best_score = -1;
  for (const auto& name : singles) {
    double sum = 0;
    int count = 0;
    for (const auto& m : means)
      if (m.method == name) {
        sum += m.value;
        ++count;
      }
    const double score = count ? sum / count : 0.0;
    if (score > best_score) {
      best_score = score;
      best = name;
    }
  }
  auto oracle = oracle_experts(report);
  std::vector<ScoreRow> added;
  for (const auto& [benchmark, tasks] : layout(report)) {
    for (const auto& task : tasks) {
      auto it = oracle.find(benchmark + "/" + task);
      if (it == oracle.end()) continue;
      ScoreRow r = *find_row(report, it->second, benchmark, task);
      r.method = kOracle;
      added.push_back(r);
    }
  }
  for (const auto& r : report.rows)
    if (r.method == best) {
      ScoreRow c = r;
      c.method = kBestIndividual;
      added.push_back(c);
    }
  report.methods.push_back({kOracle, "derived", false, "per task, the best single expert on that task"});
  report.methods.push_back({kBestIndividual, "derived", false, "the single expert with the best mean: " + best});
  report.rows.insert(report.rows.end(), added.begin(), added.end());
}

std::vector<MeanRow> benchmark_means(const Report& report) {
  std::vector<MeanRow> out;
  const auto benchmarks = layout(report);
  for (const auto& m : report.methods) {
    for (const auto& [benchmark, tasks] : benchmarks) {
      MeanRow mean{m.name, benchmark, 0.0, 0};
      for (const auto& task : tasks)
        if (const ScoreRow* r = find_row(report, m.name, benchmark, task)) {
          mean.value += r->value;
          ++mean.tasks;
        }
      if (mean.tasks == 0) continue;
      mean.value /= static_cast<double>(mean.tasks);
      out.push_back(mean);
    }
  }
  return out;
}

nlohmann::ordered_json report_json(const Report& report) {
  nlohmann::ordered_json j;
  j["rows"] = nlohmann::ordered_json::array();
  for (const auto& r : report.rows)
    j["rows"].push_back({{"method", r.method},
                         {"task", r.task},
                         {"benchmark", r.benchmark},
                         {"metric", r.metric},
                         {"value", r.value},
                         {"n", r.n}});
  j["means"] = nlohmann::ordered_json::array();
  for (const auto& m : benchmark_means(report))
    j["means"].push_back({{"method", m.method}, {"benchmark", m.benchmark}, {"value", m.value}, {"tasks", m.tasks}});
  nlohmann::ordered_json meta = report.meta;
  meta["methods"] = nlohmann::ordered_json::array();
  for (const auto& m : report.methods) {
    nlohmann::ordered_json e = {{"name", m.name}, {"kind", m.kind}, {"zero_shot", m.zero_shot}};
    if (!m.note.empty()) e["note"] = m.note;
    meta["methods"].push_back(e);
  }
  j["meta"] = meta;
  if (!report.routing.empty()) j["routing"] = routing_summary(report);
  return j;
}

std::string report_markdown(const Report& report, std::size_t max_single_rows) {
  const auto benchmarks = layout(report);
  const auto means = benchmark_means(report);
  std::size_t singles = 0;
  for (const auto& m : report.methods) singles += m.kind == "single";
  const bool hide_singles = singles > max_single_rows;

  std::ostringstream md;
  md << "| Method |";
  std::string rule = "|---|";
  for (const auto& [benchmark, tasks] : benchmarks) {
    for (const auto& t : tasks) {
      md << " " << md_cell(t) << " |";
      rule += "---:|";
    }
    md << " **" << md_cell(benchmark) << "** |";
    rule += "---:|";
  }
  md << "\n" << rule << "\n";
  bool any_not_zero_shot = false;
  for (const auto& m : table_order(report.methods)) {
    if (hide_singles && m.kind == "single") continue;
    any_not_zero_shot |= !m.zero_shot;
    md << "| " << md_cell(m.name) << (m.zero_shot ? "" : " †") << " |";
    for (const auto& [benchmark, tasks] : benchmarks) {
      for (const auto& t : tasks) {
        const ScoreRow* r = find_row(report, m.name, benchmark, t);
        md << " " << (r ? percent(r->value) : "–") << " |";
      }
      auto it = std::find_if(means.begin(), means.end(),
                             [&](const MeanRow& x) { return x.method == m.name && x.benchmark == benchmark; });
      md << " **" << (it != means.end() ? percent(it->value) : "–") << "** |";
    }
    md << "\n";
  }
  md << "\nAccuracy (rank classification) or exact match (generation), in %; bold: the benchmark's "
        "unweighted mean over its tasks.\n";
  if (any_not_zero_shot)
    md << "† not zero-shot: uses held-out labels to pick experts (Oracle, Best individual, single experts) or "
          "held-in data of every task (Multitask) — a ceiling, not a post-hoc method.\n";
  for (const auto& m : report.methods)
    if (m.name == kBestIndividual && !m.note.empty()) md << "Best individual: " << md_cell(m.note) << ".\n";
  if (hide_singles) md << singles << " single-expert rows are in the JSON and CSV reports.\n";
  return md.str();
}

std::string report_csv(const Report& report) {
  std::ostringstream csv;
  csv << "method,task,benchmark,metric,value,n\n";
  for (const auto& r : report.rows)
    csv << csv_field(r.method) << "," << csv_field(r.task) << "," << csv_field(r.benchmark) << "," << r.metric << ","
        << number(r.value) << "," << r.n << "\n";
  for (const auto& m : benchmark_means(report))
    csv << csv_field(m.method) << ",mean," << csv_field(m.benchmark) << ",mean," << number(m.value) << "," << m.tasks
        << "\n";
  return csv.str();
}

std::vector<fs::path> write_report(const Report& report, const fs::path& json_path) {
  fs::path stem = json_path;
  stem.replace_extension();
  const fs::path md = fs::path(stem.string() + ".md");
  const fs::path csv = fs::path(stem.string() + ".csv");
  if (!json_path.parent_path().empty()) fs::create_directories(json_path.parent_path());
  io::write_file_atomic(json_path, report_json(report).dump(2) + "\n");
  io::write_file_atomic(md, report_markdown(report));
  io::write_file_atomic(csv, report_csv(report));
  return {json_path, md, csv};
}

}  // namespace gaggle::eval
