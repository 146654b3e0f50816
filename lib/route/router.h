#pragma once
// The routers a routed model can be assembled with (design.md §2), one explicit list.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gaggle::route {

enum class RouterKind {
  phatgoose,           // per token, per module: LN(u) · LN(gate) / sqrt(d_in), top-k
  arrow,               // per token, per module: |u · top singular vector of B A| / 10 / sqrt(d_in)
  average_activation,  // like phatgoose, with the experts' average input activations as keys
  retrieval,           // one expert per example, by embedding similarity
  merged,              // the mean of all experts' updates, on every token
  merged_factors,      // one expert with the experts' averaged A and averaged B, on every token
  single,              // one fixed expert on every token
  smear,               // per example, experts merged by the mean routing distribution
};

std::string_view router_name(RouterKind kind);
// nullopt for a name that is not a router.
std::optional<RouterKind> parse_router(std::string_view name);
const std::vector<RouterKind>& all_routers();
// "phatgoose, arrow, ..." for help texts and errors; without "single" for the routers that
// route over a whole pool (eval --routers).
std::string router_names(bool include_single = true);
// One line on what the router does (help texts, inspect).
std::string_view router_summary(RouterKind kind);

}  // namespace gaggle::route
