// gaggle debug route — runs one routed linear layer on a case in the format of the golden
// routing cases (tests/data/golden/README.md, "routing/") and writes what it computed.
#ifdef GAGGLE_WITH_TORCH
#include <cstdio>
#include <filesystem>
#include <memory>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "model/runtime.h"
#include "route/arrow.h"
#include "route/average_activation.h"
#include "route/merged.h"
#include "route/phatgoose.h"
#include "route/routed_linear.h"
#include "route/router.h"
#include "route/tensor_file.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

struct DebugRouteOptions {
  std::string case_path;
  std::string out_path;
  int threads = 0;
};

double number_or(const nlohmann::json& j, const char* key, double fallback) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

int run_debug_route(const DebugRouteOptions& opt) {
  model::configure_runtime({opt.threads, "cpu"});
  namespace fs = std::filesystem;
  fs::path case_path = opt.case_path;
  fs::path json_path = fs::path(case_path).replace_extension(".json");
  auto meta = io::read_json_file(json_path);
  auto file = std::make_shared<const io::SafetensorsFile>(io::SafetensorsFile::open(case_path));

  std::string router_text = meta.value("router", "");
  auto router = route::parse_router(router_text);
  if (!router || (*router != route::RouterKind::phatgoose && *router != route::RouterKind::arrow &&
                  *router != route::RouterKind::average_activation))
    throw_error(ErrorCode::invalid, "cmd", json_path.string() + ": field 'router' is '" + router_text + "'",
                "a routing case names phatgoose, arrow or average-activation");
  if (!meta.contains("top_k") || !meta["top_k"].is_number_integer())
    throw_error(ErrorCode::invalid, "cmd", json_path.string() + ": field 'top_k' is missing or not an integer");

  at::NoGradGuard no_grad;
  auto u = route::read_tensor(file, "u");
  auto w = route::read_tensor(file, "W");
  auto a = route::read_tensor(file, "A");
  auto b = route::read_tensor(file, "B");
  route::RoutedLinearOptions options;
  options.top_k = meta["top_k"].get<int>();
  options.lora_scale = number_or(meta, "lora_scale", 0);
  options.layer_norm_eps = number_or(meta, "layer_norm_eps", route::kRouteLayerNormEps);
  options.renorm_eps = number_or(meta, "renorm_eps", 1e-6);
  options.arrow_temperature = number_or(meta, "arrow_temperature", route::kArrowTemperature);
  at::Tensor keys;
  if (*router == route::RouterKind::arrow) {
    options.score = route::ScoreKind::abs_dot;
    keys = route::arrow_keys(a, b);  // computed from the factors, as assembly does
  } else {
    auto raw = route::read_tensor(file, file->find("keys") ? "keys" : "gates");
    keys = *router == route::RouterKind::phatgoose ? route::phatgoose_keys(raw) : route::average_activation_keys(raw);
  }

  route::RoutedLinear layer(a, b, keys, options);
  auto base = at::mm(u, w.t());
  auto routing = layer.route(u);
  auto y = layer.combine(u, base, routing);
  route::MergedLinear merged(a, b, options.lora_scale);
  auto y_merged = merged.apply(u, base);

  io::SafetensorsWriter writer;
  route::add_tensor(writer, "scores", routing.scores);
  route::add_tensor(writer, "topk_index", routing.topk_index);
  route::add_tensor(writer, "topk_weight", routing.topk_weight);
  route::add_tensor(writer, "y", y);
  route::add_tensor(writer, "y_merged", y_merged);
  writer.set_metadata("router", std::string(route::router_name(*router)));
  writer.write(opt.out_path);

  std::printf("%s: router %s, %lld tokens, %lld experts, top-%d -> %s\n", case_path.filename().c_str(),
              std::string(route::router_name(*router)).c_str(), static_cast<long long>(u.size(0)),
              static_cast<long long>(layer.experts()), options.top_k, opt.out_path.c_str());
  // Where the case records the expected outputs, say how close this run came.
  const std::pair<const char*, at::Tensor> produced[] = {{"scores", routing.scores},
                                                         {"topk_weight", routing.topk_weight},
                                                         {"y", y},
                                                         {"y_merged", y_merged}};
  if (file->find("topk_index"))
    std::printf("  topk_index: %s\n",
                at::equal(route::read_tensor(file, "topk_index"), routing.topk_index) ? "identical" : "DIFFERENT");
  for (const auto& [name, tensor] : produced)
    if (file->find(name))
      std::printf("  %-11s max |diff| %.3g\n", name, (route::read_tensor(file, name) - tensor).abs().max().item<double>());
  return kExitSuccess;
}

}  // namespace

Runner setup_debug_route(CLI::App& sub) {
  auto opt = std::make_shared<DebugRouteOptions>();
  sub.add_option("--case", opt->case_path, "CASE.safetensors (u, W, A, B, gates/keys); CASE.json beside it")
      ->required()
      ->check(CLI::ExistingFile);
  sub.add_option("--out", opt->out_path, "Where to write scores, topk_index, topk_weight, y, y_merged")->required();
  sub.add_option("--threads", opt->threads, "Compute threads (0 = every core)");
  set_example(sub,
              "  gaggle debug route --case tests/data/golden/routing/phatgoose-small.safetensors --out got.safetensors");
  return [opt]() -> int { return run_debug_route(*opt); };
}

}  // namespace gaggle::cli
#endif  // GAGGLE_WITH_TORCH
