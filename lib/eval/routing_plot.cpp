#include "eval/routing_plot.h"

#include <cmath>

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "io/atomic_file.h"

namespace fs = std::filesystem;

namespace gaggle::eval {
namespace {

std::string xml(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fmt(double v, const char* f = "%.4f") {
  char buf[40];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Light (#f7fbff) to dark blue (#08306b) by t in [0, 1].
std::string blue(double t) {
  t = std::clamp(t, 0.0, 1.0);
  auto mix = [&](int a, int b) { return static_cast<int>(a + (b - a) * t + 0.5); };
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", mix(0xf7, 0x08), mix(0xfb, 0x30), mix(0xff, 0x6b));
  return buf;
}

std::string slug(const std::string& s) {
  std::string out;
  for (char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-') out += c;
    else if (c >= 'A' && c <= 'Z') out += static_cast<char>(c - 'A' + 'a');
    else out += '-';
  }
  return out.empty() ? "x" : out;
}

bool parse_block(const std::string& module, std::string* stack, int* layer) {
  for (const char* s : {"encoder", "decoder"}) {
    const std::string prefix = std::string(s) + ".block.";
    if (module.rfind(prefix, 0) != 0) continue;
    std::size_t pos = prefix.size();
    std::size_t end = pos;
    while (end < module.size() && module[end] >= '0' && module[end] <= '9') ++end;
    if (end == pos || end >= module.size() || module[end] != '.') return false;
    *stack = s;
    *layer = std::stoi(module.substr(pos, end - pos));
    return true;
  }
  return false;
}

std::string strip_version(const std::string& label) {
  const auto at = label.rfind('@');
  return at == std::string::npos ? label : label.substr(0, at);
}

}  // namespace

RoutingFigure routing_figure(const TaskRouting& routing, const std::string& oracle_expert) {
  RoutingFigure fig;
  fig.method = routing.method;
  fig.task = routing.task;
  fig.benchmark = routing.benchmark;
  fig.experts = routing.experts;
  const std::size_t n = routing.experts.size();
  std::map<std::pair<int, int>, std::vector<std::int64_t>> sums;  // (0 enc / 1 dec, layer)
  for (const auto& [module, counts] : routing.counts) {
    std::string stack;
    int layer = 0;
    if (!parse_block(module, &stack, &layer) || counts.size() != n) continue;
    auto& s = sums[{stack == "encoder" ? 0 : 1, layer}];
    s.resize(n, 0);
    for (std::size_t i = 0; i < n; ++i) s[i] += counts[i];
  }
  for (const auto& [key, s] : sums) {
    RoutingLayer l;
    l.stack = key.first == 0 ? "encoder" : "decoder";
    l.layer = key.second;
    for (auto v : s) l.slots += v;
    for (auto v : s) l.share.push_back(l.slots ? static_cast<double>(v) / static_cast<double>(l.slots) : 0.0);
    fig.layers.push_back(std::move(l));
  }
  if (!oracle_expert.empty())
    for (std::size_t i = 0; i < n; ++i)
      if (routing.experts[i] == oracle_expert || strip_version(routing.experts[i]) == oracle_expert ||
          routing.experts[i] == strip_version(oracle_expert))
        fig.oracle = static_cast<int>(i);
  return fig;
}

std::string routing_svg(const RoutingFigure& fig) {
  const int n = static_cast<int>(fig.experts.size());
  const int cols = static_cast<int>(fig.layers.size());
  std::size_t longest = 6;
  for (const auto& e : fig.experts) longest = std::max(longest, e.size() + (fig.oracle >= 0 ? 10 : 0));
  const int label_w = static_cast<int>(std::min<std::size_t>(longest, 40) * 7) + 16;
  const int cell_w = 26, cell_h = n > 24 ? 12 : 20, top = 64, gap = 12;
  int enc_cols = 0;
  for (const auto& l : fig.layers) enc_cols += l.stack == "encoder";
  const int grid_w = cols * cell_w + (enc_cols > 0 && enc_cols < cols ? gap : 0);
  const int width = label_w + grid_w + 150, height = top + n * cell_h + 40;
  double max_share = 0;
  for (const auto& l : fig.layers)
    for (double s : l.share) max_share = std::max(max_share, s);

  auto col_x = [&](int c) { return label_w + c * cell_w + (c >= enc_cols && enc_cols > 0 ? gap : 0); };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"routing-plot\" width=\"" << width << "\" height=\""
      << height << "\" viewBox=\"0 0 " << width << " " << height << "\" data-method=\"" << xml(fig.method)
      << "\" data-task=\"" << xml(fig.task) << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  svg << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  svg << "<text x=\"8\" y=\"18\" font-size=\"14\" font-weight=\"bold\">" << xml(fig.method) << " routing on "
      << xml(fig.benchmark.empty() ? fig.task : fig.benchmark + "/" + fig.task) << "</text>\n";
  svg << "<text x=\"8\" y=\"34\" fill=\"#555\">share of tokens routed to each expert, per layer</text>\n";
  if (enc_cols > 0)
    svg << "<text class=\"stack-label\" x=\"" << col_x(0) << "\" y=\"" << top - 22 << "\">encoder</text>\n";
  if (enc_cols < cols)
    svg << "<text class=\"stack-label\" x=\"" << col_x(enc_cols) << "\" y=\"" << top - 22 << "\">decoder</text>\n";
  for (int c = 0; c < cols; ++c)
    svg << "<text class=\"layer-label\" x=\"" << col_x(c) + cell_w / 2 << "\" y=\"" << top - 6
        << "\" text-anchor=\"middle\">" << (fig.layers[c].stack == "encoder" ? "E" : "D") << fig.layers[c].layer
        << "</text>\n";
  for (int i = 0; i < n; ++i) {
    const int y = top + i * cell_h;
    const bool oracle = i == fig.oracle;
    if (oracle) svg << "<g class=\"oracle\">\n";
    svg << "<text class=\"expert-label\" x=\"" << label_w - 6 << "\" y=\"" << y + cell_h - 4
        << "\" text-anchor=\"end\"" << (oracle ? " font-weight=\"bold\" fill=\"#c0392b\"" : "") << ">"
        << xml(oracle ? "\u2605 " + fig.experts[i] + " (oracle)" : fig.experts[i]) << "</text>\n";
    for (int c = 0; c < cols; ++c) {
      const double share = fig.layers[c].share[static_cast<std::size_t>(i)];
      svg << "<rect class=\"cell\" x=\"" << col_x(c) << "\" y=\"" << y << "\" width=\"" << cell_w - 1 << "\" height=\""
          << cell_h - 1 << "\" fill=\"" << blue(max_share > 0 ? share / max_share : 0) << "\" data-expert=\""
          << xml(fig.experts[i]) << "\" data-layer=\"" << fig.layers[c].stack << "." << fig.layers[c].layer
          << "\" data-share=\"" << fmt(share) << "\"><title>" << xml(fig.experts[i]) << ", "
          << fig.layers[c].stack << " layer " << fig.layers[c].layer << ": " << fmt(share * 100, "%.1f")
          << "%</title></rect>\n";
    }
    if (oracle) {
      svg << "<rect class=\"oracle-outline\" x=\"" << label_w - 2 << "\" y=\"" << y - 1 << "\" width=\"" << grid_w + 3
          << "\" height=\"" << cell_h + 1 << "\" fill=\"none\" stroke=\"#c0392b\" stroke-width=\"2\"/>\n</g>\n";
    }
  }
  // Legend: the colour scale, from 0 to the largest share in the figure.
  const int lx = label_w + grid_w + 20;
  for (int k = 0; k < 10; ++k)
    svg << "<rect class=\"legend\" x=\"" << lx << "\" y=\"" << top + k * 12 << "\" width=\"16\" height=\"12\" fill=\""
        << blue(1.0 - k / 9.0) << "\"/>\n";
  svg << "<text x=\"" << lx + 22 << "\" y=\"" << top + 10 << "\">" << fmt(max_share * 100, "%.1f") << "%</text>\n";
  svg << "<text x=\"" << lx + 22 << "\" y=\"" << top + 118 << "\">0%</text>\n";
  svg << "</svg>\n";
  return svg.str();
}

std::string report_html(const Report& report, const std::vector<RoutingFigure>& figures,
                        const std::vector<std::string>& svg_links) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>gaggle eval report</title>\n"
       "<style>body{font-family:sans-serif;margin:24px;color:#222;background:#fff}"
       "table{border-collapse:collapse;margin-bottom:24px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
       "td:first-child,th:first-child{text-align:left}th{background:#eef3fb}td.mean{font-weight:bold}"
       "section.plot{margin:16px 0}</style>\n</head>\n<body>\n<h1>gaggle eval</h1>\n";
  // The table: rows = methods (paper order), columns = tasks then benchmark means.
  auto means = benchmark_means(report);
  std::vector<std::pair<std::string, std::vector<std::string>>> benchmarks;
  for (const auto& r : report.rows) {
    auto it = std::find_if(benchmarks.begin(), benchmarks.end(), [&](const auto& b) { return b.first == r.benchmark; });
    if (it == benchmarks.end()) {
      benchmarks.push_back({r.benchmark, {}});
      it = benchmarks.end() - 1;
    }
    if (std::find(it->second.begin(), it->second.end(), r.task) == it->second.end()) it->second.push_back(r.task);
  }
  h << "<table id=\"results\">\n<tr><th>Method</th>";
  for (const auto& [b, tasks] : benchmarks) {
    for (const auto& t : tasks) h << "<th>" << xml(t) << "</th>";
    h << "<th>" << xml(b) << " (mean)</th>";
  }
  h << "</tr>\n";
  for (const auto& m : table_order(report.methods)) {
    h << "<tr><td>" << xml(m.name) << (m.zero_shot ? "" : " \u2020") << "</td>";
    for (const auto& [b, tasks] : benchmarks) {
      for (const auto& t : tasks) {
        auto it = std::find_if(report.rows.begin(), report.rows.end(), [&](const ScoreRow& r) {
          return r.method == m.name && r.benchmark == b && r.task == t;
        });
        h << "<td>" << (it != report.rows.end() ? fmt(it->value * 100, "%.1f") : "\u2013") << "</td>";
      }
      auto it = std::find_if(means.begin(), means.end(),
                             [&](const MeanRow& x) { return x.method == m.name && x.benchmark == b; });
      h << "<td class=\"mean\">" << (it != means.end() ? fmt(it->value * 100, "%.1f") : "\u2013") << "</td>";
    }
    h << "</tr>\n";
  }
  h << "</table>\n<p>Accuracy or exact match in %. \u2020 not zero-shot (uses held-out labels or all held-in "
       "data).</p>\n";
  if (!figures.empty()) h << "<h2>Routing</h2>\n";
  for (std::size_t i = 0; i < figures.size(); ++i) {
    const auto& f = figures[i];
    h << "<section class=\"plot\" id=\"plot-" << i << "\">\n<h3>" << xml(f.method) << " \u2014 "
      << xml(f.benchmark + "/" + f.task) << "</h3>\n";
    if (i < svg_links.size()) h << "<p><a href=\"" << xml(svg_links[i]) << "\">" << xml(svg_links[i]) << "</a></p>\n";
    h << routing_svg(f) << "</section>\n";
  }
  h << "</body>\n</html>\n";
  return h.str();
}

std::string oracle_expert_of(const std::map<std::string, std::string>& oracle, const TaskRouting& routing) {
  auto it = oracle.find(routing.benchmark + "/" + routing.task);
  if (it == oracle.end()) return "";
  std::string name = it->second;
  const std::string prefix = kSingleMethodPrefix;
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  return name;
}

double share_entropy(const std::vector<double>& share) {
  if (share.size() < 2) return 0;
  double h = 0;
  for (double p : share)
    if (p > 0) h -= p * std::log(p);
  return h / std::log(static_cast<double>(share.size()));
}

nlohmann::ordered_json routing_summary(const Report& report) {
  auto oracle = oracle_experts(report);
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& r : report.routing) {
    const RoutingFigure fig = routing_figure(r, oracle_expert_of(oracle, r));
    nlohmann::ordered_json entry = {{"method", fig.method}, {"task", fig.task}, {"benchmark", fig.benchmark}};
    entry["oracle"] = fig.oracle >= 0 ? nlohmann::ordered_json(fig.experts[static_cast<std::size_t>(fig.oracle)])
                                      : nlohmann::ordered_json(nullptr);
    std::int64_t slots = 0;
    double oracle_slots = 0;
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    for (const auto& l : fig.layers) {
      std::size_t top = 0;
      for (std::size_t i = 1; i < l.share.size(); ++i)
        if (l.share[i] > l.share[top]) top = i;
      nlohmann::ordered_json layer = {{"stack", l.stack},
                                      {"layer", l.layer},
                                      {"slots", l.slots},
                                      {"entropy", share_entropy(l.share)},
                                      {"top", l.share.empty() ? "" : fig.experts[top]}};
      if (fig.oracle >= 0) {
        const double s = l.share[static_cast<std::size_t>(fig.oracle)];
        layer["oracle_share"] = s;
        oracle_slots += s * static_cast<double>(l.slots);
      }
      slots += l.slots;
      layers.push_back(std::move(layer));
    }
    if (fig.oracle >= 0) entry["oracle_share"] = slots ? oracle_slots / static_cast<double>(slots) : 0.0;
    entry["layers"] = std::move(layers);
    out.push_back(std::move(entry));
  }
  return out;
}

std::vector<fs::path> write_html_report(const Report& report, const fs::path& html_path) {
  fs::path stem = html_path;
  stem.replace_extension();
  const fs::path plot_dir = fs::path(stem.string() + ".routing");
  auto oracle = oracle_experts(report);
  std::vector<RoutingFigure> figures;
  std::vector<std::string> links;
  std::vector<fs::path> written;
  for (const auto& r : report.routing) {
    figures.push_back(routing_figure(r, oracle_expert_of(oracle, r)));
    const fs::path rel = fs::path(plot_dir.filename()) / slug(r.method) / (slug(r.benchmark) + "-" + slug(r.task) + ".svg");
    links.push_back(rel.generic_string());
  }
  if (!html_path.parent_path().empty()) fs::create_directories(html_path.parent_path());
  for (std::size_t i = 0; i < figures.size(); ++i) {
    const fs::path out = html_path.parent_path() / links[i];
    fs::create_directories(out.parent_path());
    io::write_file_atomic(out, routing_svg(figures[i]));
    written.push_back(out);
  }
  io::write_file_atomic(html_path, report_html(report, figures, links));
  written.insert(written.begin(), html_path);
  return written;
}

}  // namespace gaggle::eval
