#include "route/router.h"

namespace gaggle::route {
namespace {

struct Entry {
  RouterKind kind;
  std::string_view name, summary;
};

constexpr Entry kRouters[] = {
    {RouterKind::phatgoose, "phatgoose",
     "per token and module, the top-k experts by LN(u) . LN(gate) (the experts' trained gates)"},
    {RouterKind::arrow, "arrow", "per token and module, the top-k experts by |u . top singular vector of B A|"},
    {RouterKind::average_activation, "average-activation",
     "like phatgoose, with the experts' average input activations as keys"},
    {RouterKind::retrieval, "retrieval",
     "per example, the one expert whose training inputs are most similar (base encoder embeddings)"},
    {RouterKind::merged, "merged", "every token, the mean of all experts' updates (B A)"},
    {RouterKind::merged_factors, "merged-factors",
     "every token, one expert whose A and B are the experts' averaged A and averaged B"},
    {RouterKind::single, "single", "every token, one expert (--expert NAME)"},
    {RouterKind::smear, "smear", "per example, all experts merged by the mean phatgoose routing distribution"},
};

}  // namespace

std::string_view router_name(RouterKind kind) {
  for (const auto& e : kRouters)
    if (e.kind == kind) return e.name;
  return "unknown";
}

std::string_view router_summary(RouterKind kind) {
  for (const auto& e : kRouters)
    if (e.kind == kind) return e.summary;
  return "";
}

std::optional<RouterKind> parse_router(std::string_view name) {
  for (const auto& e : kRouters)
    if (e.name == name) return e.kind;
  if (name == "average_activation" || name == "avg-act") return RouterKind::average_activation;
  return std::nullopt;
}

const std::vector<RouterKind>& all_routers() {
  static const std::vector<RouterKind> kinds = [] {
    std::vector<RouterKind> v;
    for (const auto& e : kRouters) v.push_back(e.kind);
    return v;
  }();
  return kinds;
}

std::string router_names(bool include_single) {
  std::string s;
  for (const auto& e : kRouters)
    if (include_single || e.kind != RouterKind::single) s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

}  // namespace gaggle::route
