// gaggle pool — show what a local pool holds (lib/hub/pool.h) and verify it
// (lib/hub/pool_trust.h).
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "bundle/gate_separation.h"
#include "bundle/manifest.h"
#include "hub/pool.h"
#include "hub/pool_trust.h"
#include "hub_progress.h"
#include "io/error.h"
#include "io/terminal_text.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

// The bundle's first safetensors file (an expert bundle has one, adapter.safetensors).
void add_source(std::vector<bundle::GateSource>& sources, const std::filesystem::path& dir) {
  const bundle::Manifest m = bundle::read_manifest(dir);
  for (const auto& f : m.files)
    if (f.path.ends_with(".safetensors")) {
      sources.push_back({m.name + "@" + m.version, dir / f.path});
      return;
    }
  throw Error(ErrorCode::invalid, "cli", "bundle '" + dir.string() + "' has no safetensors file");
}

// A pulled pool (verified first, like every verb that loads one), or bundle directories
// of one's own (not verified: training output before it is signed).
int print_gate_separation(const std::string& pool_dir, const std::vector<std::string>& bundles, const std::string& trust,
                          bool json) {
  std::vector<bundle::GateSource> sources;
  if (!pool_dir.empty()) {
    const auto verified = hub::verify_pool(pool_dir, trust);
    const hub::Pool pool = hub::read_pool(pool_dir);
    for (const auto& v : verified)
      if (const hub::PoolBundle* b = pool.find(v.name, v.version)) add_source(sources, std::filesystem::path(pool_dir) / b->path);
  }
  for (const auto& b : bundles) add_source(sources, b);
  const bundle::GateSeparation s = bundle::measure_gate_separation(sources);
  if (json) {
    auto row = [](const bundle::LayerSeparation& l) {
      return nlohmann::ordered_json{{"layer", l.layer},
                                    {"modules", l.modules},
                                    {"gate_cosine", l.gate_cosine},
                                    {"avg_act_cosine", l.avg_act_cosine},
                                    {"own_alignment", l.own_alignment},
                                    {"self_top1", l.self_top1},
                                    {"centred_top1", l.centred_top1}};
    };
    nlohmann::ordered_json out = {{"pool", pool_dir}, {"experts", s.experts}, {"chance_top1", 1.0 / s.experts.size()}};
    out["overall"] = row(s.overall);
    out["layers"] = nlohmann::ordered_json::array();
    for (const auto& l : s.layers) out["layers"].push_back(row(l));
    out["expert_self_top1"] = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < s.experts.size(); ++i) out["expert_self_top1"][s.experts[i]] = s.expert_self_top1[i];
    out["skipped_modules"] = s.skipped_modules;
    std::cout << out.dump(2) << "\n";
    return kExitSuccess;
  }
  std::printf("%-22s %7s %9s %12s %10s %10s %13s\n", "layer", "modules", "gate cos", "avg-act cos", "own align",
              "self top-1", "centred top-1");
  auto print = [](const bundle::LayerSeparation& l) {
    std::printf("%-22s %7d %9.3f %12.3f %10.3f %9.1f%% %12.1f%%\n", io::terminal_safe(l.layer).c_str(), l.modules,
                l.gate_cosine, l.avg_act_cosine, l.own_alignment, 100 * l.self_top1, 100 * l.centred_top1);
  };
  for (const auto& l : s.layers) print(l);
  print(s.overall);
  std::printf("\n%zu experts; self top-1 by chance: %.1f%%\n", s.experts.size(), 100.0 / s.experts.size());
  for (std::size_t i = 0; i < s.experts.size(); ++i)
    std::printf("  %-28s self top-1 %5.1f%%\n", s.experts[i].c_str(), 100 * s.expert_self_top1[i]);
  if (s.skipped_modules) std::printf("%d modules skipped (an expert has no gate or average activation there)\n", s.skipped_modules);
  return kExitSuccess;
}

}  // namespace

Runner setup_pool(CLI::App& sub) {
  sub.require_subcommand(1);
  auto pool_dir = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* list = sub.add_subcommand("list", "List the bundles in a pool");
  list->add_option("--pool", *pool_dir, "The pool directory")->required();
  list->add_flag("--json", *json, "Print pool.json's content as JSON");
  auto trust = std::make_shared<std::string>();
  CLI::App* verify = sub.add_subcommand("verify", "Verify every bundle of a pool (signature, signer, files, tensors)");
  verify->add_option("--pool", *pool_dir, "The pool directory")->required();
  verify->add_option("--trust", *trust, "Allowed-signers file (default: the one the pool was pulled with)");
  verify->add_flag("--json", *json, "Print the verified bundles as JSON");
  CLI::App* gates = sub.add_subcommand(
      "gates",
      "How far apart the pool's gates are, per layer: PHATGOOSE can only route between gates that differ.\n"
      "  gate cosine     mean cosine between two experts' standardised gates (1: the same direction)\n"
      "  avg-act cosine  the same for their average activations (how alike their tasks look to the model)\n"
      "  own align       cosine between an expert's gate and its own average activation\n"
      "  self top-1      how often an expert's own average activation scores its own gate highest (chance 1/N)\n"
      "  centred top-1   the same once the pool's mean average activation is removed from it (what every task shares):\n"
      "                  well above self top-1 means a shared input direction, not the gates, hides the experts");
  auto gate_bundles = std::make_shared<std::vector<std::string>>();
  gates->add_option("--pool", *pool_dir, "The pool directory");
  gates->add_option("bundles", *gate_bundles, "Expert bundle directories (train-gate output), instead of or besides --pool");
  gates->add_option("--trust", *trust, "Allowed-signers file (default: the one the pool was pulled with)");
  gates->add_flag("--json", *json, "Print the measurements as JSON");
  set_example(sub,
              "  gaggle pool list --pool pool\n  gaggle pool list --pool pool --json | jq '.bundles[].name'\n"
              "  gaggle pool verify --pool pool\n  gaggle pool gates --pool pool\n  gaggle pool gates experts/*   # before publishing");
  return [=]() -> int {
    if (gates->parsed()) {
      if (pool_dir->empty() && gate_bundles->empty())
        throw Error(ErrorCode::usage, "cli", "pool gates needs --pool POOL or bundle directories",
                    "e.g. gaggle pool gates --pool pool, or gaggle pool gates experts/*");
      return print_gate_separation(*pool_dir, *gate_bundles, *trust, *json);
    }
    if (verify->parsed()) {
      auto verified = hub::verify_pool(*pool_dir, *trust);
      if (*json) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& v : verified)
          list.push_back({{"name", v.name}, {"version", v.version}, {"principal", v.principal},
                          {"key_fingerprint", v.key_fingerprint}, {"cached", v.from_cache}});
        std::cout << nlohmann::json{{"pool", *pool_dir}, {"verified", list}}.dump(2) << "\n";
        return kExitSuccess;
      }
      std::size_t cached = 0;
      for (const auto& v : verified) cached += v.from_cache;
      std::printf("%zu bundles verified against %s (%zu unchanged since the last check)\n", verified.size(),
                  hub::pool_trust_file(*pool_dir, *trust).c_str(), cached);
      return kExitSuccess;
    }
    hub::Pool pool = hub::read_pool(*pool_dir);
    if (*json) {
      std::cout << hub::serialize_pool(pool);
      return kExitSuccess;
    }
    std::size_t w = 4;
    for (const auto& b : pool.bundles) w = std::max(w, b.name.size() + 1 + b.version.size());
    std::printf("%-*s  %-24s  %10s  %s\n", static_cast<int>(w), "bundle", "signer", "size", "path");
    std::uint64_t total = 0;
    for (const auto& b : pool.bundles) {
      std::string nv = b.name + "@" + b.version;
      std::printf("%-*s  %-24s  %10s  %s\n", static_cast<int>(w), nv.c_str(), b.principal.c_str(),
                  human_bytes(b.bytes).c_str(), b.path.c_str());
      total += b.bytes;
    }
    std::printf("\n%zu bundles, %s, from %s at %s (%s)\n", pool.bundles.size(), human_bytes(total).c_str(),
                pool.hub.c_str(), pool.commit.substr(0, 12).c_str(), pool.updated.c_str());
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
