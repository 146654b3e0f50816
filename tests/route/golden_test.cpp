// The golden routing cases (tests/data/golden/README.md, "routing/"): computed with the
// PHATGOOSE reference code's own operations. Indices exact, values within 1e-5.
#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/json_file.h"
#include "io/safetensors.h"
#include "route/arrow.h"
#include "route/merged.h"
#include "route/phatgoose.h"
#include "route/routed_linear.h"
#include "route/tensor_file.h"
#include "support/tensor_compare.h"
#include "support/test_devices.h"
#include "support/test_support.h"

using namespace gaggle;
using gaggle::test::max_diff;
namespace fs = std::filesystem;

namespace {

using Update = route::RoutedLinearOptions::GenericUpdate;

struct Variant {
  std::string device;
  bool generic;   // the LibTorch-op path instead of the CPU's grouped kernel
  Update update;  // the generic path's update
};

// On the CPU the grouped kernel and the generic path with each update; on a GPU the
// generic path as it runs there (bucketed) and per expert.
std::vector<Variant> variants() {
  std::vector<Variant> v;
  for (const auto& device : test::test_devices()) {
    if (device == "cpu") v.push_back({device, false, Update::automatic});
    v.push_back({device, true, Update::per_expert});
    v.push_back({device, true, Update::bucketed});
  }
  return v;
}

const char* describe(const Variant& v) {
  if (!v.generic) return " (grouped kernel)";
  return v.update == Update::bucketed ? " (generic path, bucketed)" : " (generic path, per expert)";
}

}  // namespace

TEST_CASE("every golden routing case matches the reference", "[route][golden]") {
  const fs::path dir = test::data_dir() / "golden/routing";
  const Variant variant = GENERATE(from_range(variants()));
  const std::string& device = variant.device;
  const bool generic = variant.generic;
  const at::Device where(device);
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".safetensors") continue;
    DYNAMIC_SECTION(entry.path().filename().string() << " on " << device << describe(variant)) {
      ++cases;
      auto meta = io::read_json_file(fs::path(entry.path()).replace_extension(".json"));
      auto file = std::make_shared<const io::SafetensorsFile>(io::SafetensorsFile::open(entry.path()));
      auto u = route::read_tensor(file, "u").to(where);
      auto a = route::read_tensor(file, "A").to(where);
      auto b = route::read_tensor(file, "B").to(where);
      auto w = route::read_tensor(file, "W").to(where);
      route::RoutedLinearOptions options;
      options.top_k = meta["top_k"].get<int>();
      options.lora_scale = meta["lora_scale"].get<double>();
      options.force_generic = generic;
      options.generic_update = variant.update;
      at::Tensor keys;
      if (meta["router"] == "arrow") {
        options.score = route::ScoreKind::abs_dot;
        keys = route::arrow_keys(a, b);
        // The sign is arbitrary; the direction must be the reference's.
        auto cos = (keys.cpu() * route::read_tensor(file, "keys")).sum(1).abs();
        CHECK(max_diff(cos, at::ones_like(cos)) < 1e-5);
      } else {
        keys = route::phatgoose_keys(route::read_tensor(file, "gates").to(where));
      }
      route::RoutedLinear layer(a, b, keys, options);
      auto base = at::mm(u, w.t());
      auto routing = layer.route(u);
      CHECK(at::equal(routing.topk_index.cpu(), route::read_tensor(file, "topk_index")));
      CHECK(max_diff(routing.scores.cpu(), route::read_tensor(file, "scores")) < 1e-5);
      CHECK(max_diff(routing.topk_weight.cpu(), route::read_tensor(file, "topk_weight")) < 1e-5);
      CHECK(max_diff(layer.apply(u, base).cpu(), route::read_tensor(file, "y")) < 1e-5);
      route::MergedLinear merged(a, b, options.lora_scale);
      CHECK(max_diff(merged.apply(u, base).cpu(), route::read_tensor(file, "y_merged")) < 1e-5);
    }
  }
  CHECK(cases >= 1);
  INFO("golden routing cases run: " << cases);
}
