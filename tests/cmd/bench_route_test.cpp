// gaggle-bench route --index ivf: the figures issue #15 asks for are printed for one layer
// and for the full model, and probing every cluster is exact routing (recall 1).
#include <catch2/catch.hpp>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/test_support.h"

using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {

fs::path bench_binary() { return fs::path(GAGGLE_BUILD_DIR) / "gaggle-bench"; }

// Runs gaggle-bench route with a tiny configuration plus `args`; the JSON it prints.
nlohmann::json bench_route(const std::vector<std::string>& args) {
  std::vector<std::string> argv{bench_binary().string(), "--threads", "1", "route", "--d-model", "32", "--rank", "8",
                                "--repeats", "1", "--no-dense", "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run_command(argv);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out);
}

const std::vector<std::string> kTinyModel{"--d-ff", "64", "--heads", "2", "--layers", "1", "--batch", "2",
                                          "--seq", "8", "--vocab", "64"};

}  // namespace

TEST_CASE("gaggle-bench route --index ivf reports exact time and honest recall, per layer and per model",
          "[cmd][bench]") {
  if (!fs::exists(bench_binary())) {
    std::cout << "GAGGLE-TEST-SKIPPED: gaggle-bench is not built (GAGGLE_WITH_TORCH off)\n";
    return;
  }
  // Every cluster probed: the index's routing is the exact one. The experts are routed from
  // a memory-mapped file, as an assembled model holds them.
  TempDir dir;
  auto layer = bench_route({"--layer", "--experts", "12", "--tokens", "64", "--index", "ivf", "--clusters", "3",
                            "--probe", "3", "--mapped", (dir / "mapped").string()});
  CHECK(layer["mode"] == "layer");
  CHECK(layer["index"] == "ivf");
  CHECK(layer["recall"].get<double>() == 1.0);
  CHECK(layer["candidates_per_token"].get<double>() == 12.0);
  // d = 32, r = 8, k = 2: 3 centroids and 12 candidates scored, then two experts' update.
  CHECK(layer["ivf_cost_model"]["routed_over_base"].get<double>() ==
        Approx(1 + ((3 + 12) * 32 + 2 * 8 * 2 * 32) / (32.0 * 32)));
  for (const char* key : {"base_ms", "routed_ms", "exact_ms"}) CHECK(layer[key].get<double>() > 0);
  CHECK(fs::file_size(dir / "mapped" / "experts.safetensors") == layer["mapped_file_bytes"].get<std::uint64_t>());
  CHECK(layer["experts_chosen"].get<int>() >= 2);
  CHECK(layer["experts_chosen"].get<int>() <= 12);
  CHECK(layer["chosen_factor_bytes"].get<std::int64_t>() == layer["experts_chosen"].get<std::int64_t>() * 2 * 8 * 32 * 4);

  std::vector<std::string> all = kTinyModel, one = kTinyModel;
  for (const char* a : {"--experts", "6", "--index", "ivf", "--clusters", "3", "--probe", "3"}) all.push_back(a);
  for (const char* a : {"--experts", "6", "--index", "ivf", "--clusters", "3", "--probe", "1"}) one.push_back(a);
  auto model = bench_route(all);
  CHECK(model["mode"] == "model");
  CHECK(model["recall"].get<double>() == 1.0);
  CHECK(model["candidates_per_token"].get<double>() == 6.0);
  for (const char* key : {"base_ms", "routed_ms", "exact_ms", "exact_over_base"}) CHECK(model[key].get<double>() > 0);

  CHECK(model["experts_shared_across_modules"] == false);
  // The recall per kind of module (the same projection in every block), each exact here.
  REQUIRE(model["recall_by_module_kind"].contains("encoder.layer.0.SelfAttention.q"));
  REQUIRE(model["recall_by_module_kind"].contains("decoder.layer.2.DenseReluDense.wo"));
  for (const auto& [kind, figures] : model["recall_by_module_kind"].items()) {
    INFO(kind);
    CHECK(kind.find("block") == std::string::npos);
    CHECK(figures["recall"].get<double>() == 1.0);
    CHECK(figures["candidates_per_token"].get<double>() == 6.0);
  }

  // Modules of one shape sharing their experts and index (what pools too large for memory
  // get): still exact with every cluster probed, and every module has its index (the
  // recall pass reads each one's).
  std::vector<std::string> shared = all;
  for (const char* a : {"--share-experts", "always"}) shared.push_back(a);
  auto sharing = bench_route(shared);
  CHECK(sharing["experts_shared_across_modules"] == true);
  CHECK(sharing["recall"].get<double>() == 1.0);
  CHECK(sharing["candidates_per_token"].get<double>() == 6.0);
  shared = one;
  for (const char* a : {"--share-experts", "always"}) shared.push_back(a);
  auto sharing_one = bench_route(shared);
  CHECK(sharing_one["experts_shared_across_modules"] == true);
  CHECK(sharing_one["candidates_per_token"].get<double>() < 6.0);
  auto share_layer = run_command({bench_binary().string(), "route", "--layer", "--share-experts", "always", "--json"});
  CHECK(share_layer.exit_code == 2);
  CHECK_THAT(share_layer.err, Catch::Contains("--share-experts"));

  // One cluster of three: fewer candidates, and a recall that is a share of tokens.
  auto probed = bench_route(one);
  CHECK(probed["candidates_per_token"].get<double>() < 6.0);
  CHECK(probed["recall"].get<double>() >= 0.0);
  CHECK(probed["recall"].get<double>() <= 1.0);

  // Options that only shape --layer's synthetic tokens are refused for the model.
  auto refused = run_command({bench_binary().string(), "route", "--token-signal", "1", "--json"});
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.err, Catch::Contains("--layer"));

  // The model's batch from a few tasks, the gates around each module's task centres: with
  // every cluster probed the index still routes exactly.
  std::vector<std::string> tasks = kTinyModel;
  for (const char* a : {"--experts", "8", "--families", "4", "--token-tasks", "2", "--index", "ivf", "--clusters", "4",
                        "--probe", "4"})
    tasks.push_back(a);
  auto tasked = bench_route(tasks);
  CHECK(tasked["token_tasks"] == 2);
  CHECK(tasked["recall"].get<double>() == 1.0);
  CHECK(tasked["candidates_per_token"].get<double>() == 8.0);
  // Shared factors, each module's own keys and index around its own task centres.
  for (const char* a : {"--share-experts", "always"}) tasks.push_back(a);
  auto tasked_shared = bench_route(tasks);
  CHECK(tasked_shared["experts_shared_across_modules"] == true);
  CHECK(tasked_shared["recall"].get<double>() == 1.0);
  auto no_families = run_command({bench_binary().string(), "route", "--token-tasks", "2", "--json"});
  CHECK(no_families.exit_code == 2);
  CHECK_THAT(no_families.err, Catch::Contains("--families"));
}

TEST_CASE("gaggle-bench kernels splits the update into its arithmetic and the factors' first touch",
          "[cmd][bench]") {
  if (!fs::exists(bench_binary())) {
    std::cout << "GAGGLE-TEST-SKIPPED: gaggle-bench is not built (GAGGLE_WITH_TORCH off)\n";
    return;
  }
  auto r = run_command({bench_binary().string(), "kernels", "--tokens", "64", "--d", "32", "--keys", "8",
                        "--clusters", "2", "--cluster-keys", "4", "--cluster-tokens", "8", "--experts", "4",
                        "--rank", "8", "--repeats", "1", "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["stream_read_gb_per_s"].get<double>() > 0);
  if (j.contains("update")) {  // where the CPU runs the one-pass kernel (AVX2 and FMA)
    CHECK(j["update"]["experts"] == 4);
    CHECK(j["update"]["factor_bytes"] == 4 * 2 * 8 * 32 * 4);  // A and B, float32
    CHECK(j["update"]["ms"].get<double>() > 0);
    CHECK(j["update"]["hot_factors_ms"].get<double>() > 0);
  }
}
