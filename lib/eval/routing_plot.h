#pragma once
// Routing plots (issue #8, item 4), like the paper's Figure 3: for one method and one
// task, the share of token slots routed to each expert in each layer, encoder and
// decoder, with the task's oracle expert (the best single expert on it) marked.
// SVG files, and an HTML report that holds the table and every plot inline (and links
// to the SVG files). Torch-free; output is a function of the report only (no clock).
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/report.h"

namespace gaggle::eval {

struct RoutingLayer {
  std::string stack;  // "encoder" or "decoder"
  int layer = 0;
  std::vector<double> share;  // per expert, sums to 1 over experts (0s when no tokens)
  std::int64_t slots = 0;     // token slots counted in this layer (real tokens × k × modules; no padding)
};

struct RoutingFigure {
  std::string method, task, benchmark;
  std::vector<std::string> experts;
  std::vector<RoutingLayer> layers;  // encoder layers in order, then decoder layers
  int oracle = -1;                   // index into experts, or -1
};

// Aggregates a trace's per-module counts into per-layer shares. Modules are grouped by
// their "encoder.block.N." / "decoder.block.N." prefix; other modules are left out.
// `oracle_expert` names the expert to mark ("" for none; the name may carry "@version").
RoutingFigure routing_figure(const TaskRouting& routing, const std::string& oracle_expert);

// A self-contained SVG document (class "routing-plot"; one rect.cell per expert and
// layer with data-share; the oracle's row in g.oracle).
std::string routing_svg(const RoutingFigure& figure);

// The HTML report: the table (as report_markdown, as an HTML table) and, per routed
// method and task, the plot inline with a link to its SVG file (svg_links[i] for
// figures[i], relative to the HTML file).
std::string report_html(const Report& report, const std::vector<RoutingFigure>& figures,
                        const std::vector<std::string>& svg_links);

// The oracle expert ("name@version", without the "Single " prefix) of a trace's task, or
// "" when the report has no single-expert rows for it.
std::string oracle_expert_of(const std::map<std::string, std::string>& oracle, const TaskRouting& routing);

// Entropy of a share distribution over N experts, divided by log N: 0 when one expert
// takes every slot, 1 when all take the same share.
double share_entropy(const std::vector<double>& share);

// Per routing trace (method, task): per layer the slots counted, the share entropy, the
// most chosen expert and the oracle expert's share of the top-k slots, and that share over
// all layers (slot-weighted). The "routing" section of the JSON report.
nlohmann::ordered_json routing_summary(const Report& report);

// Figures for every routing trace of the report (oracle from its single-expert rows),
// written as <stem>.routing/<method>/<benchmark>-<task>.svg beside OUT.html, and
// OUT.html itself (all atomically). Returns the paths written, the HTML first.
std::vector<std::filesystem::path> write_html_report(const Report& report, const std::filesystem::path& html_path);

}  // namespace gaggle::eval
