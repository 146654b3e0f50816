#include "route/router.h"

namespace gaggle::route {
namespace {

struct Entry {
  RouterKind kind;
  std::string_view name;
};

constexpr Entry kRouters[] = {
    {RouterKind::phatgoose, "phatgoose"}, {RouterKind::arrow, "arrow"},
    {RouterKind::average_activation, "average-activation"},
    {RouterKind::retrieval, "retrieval"}, {RouterKind::merged, "merged"},
    {RouterKind::single, "single"},       {RouterKind::smear, "smear"},
};

}  // namespace

std::string_view router_name(RouterKind kind) {
  for (const auto& e : kRouters)
    if (e.kind == kind) return e.name;
  return "unknown";
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

std::string router_names() {
  std::string s;
  for (const auto& e : kRouters) s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

}  // namespace gaggle::route
