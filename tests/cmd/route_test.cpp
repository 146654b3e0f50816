// gaggle debug route: the golden routing cases through the built binary.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "io/safetensors.h"
#include "support/test_support.h"

using namespace gaggle;
using namespace gaggle::test;
namespace fs = std::filesystem;

namespace {

std::vector<double> values(const io::SafetensorsFile& f, const std::string& name) {
  const auto& info = f.at(name);
  auto bytes = f.data(info);
  std::vector<double> out(static_cast<std::size_t>(info.numel()));
  if (info.dtype == io::DType::I64) {
    for (std::size_t i = 0; i < out.size(); ++i) {
      std::int64_t v;
      std::memcpy(&v, bytes.data() + 8 * i, 8);
      out[i] = static_cast<double>(v);
    }
  } else {
    std::vector<float> tmp(out.size());
    io::convert_to_f32(info.dtype, bytes, tmp.data(), tmp.size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = tmp[i];
  }
  return out;
}

}  // namespace

TEST_CASE("debug route reproduces every golden routing case", "[cmd][route]") {
  TempDir dir;
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(data_dir() / "golden/routing")) {
    if (entry.path().extension() != ".safetensors") continue;
    ++cases;
    fs::path out = dir / (entry.path().stem().string() + ".out.safetensors");
    auto r = run_gaggle({"debug", "route", "--case", entry.path().string(), "--out", out.string()});
    INFO(entry.path().filename().string() << "\n" << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("topk_index: identical"));
    auto got = io::SafetensorsFile::open(out);
    auto want = io::SafetensorsFile::open(entry.path());
    CHECK(got.at("topk_index").dtype == io::DType::I64);
    CHECK(values(got, "topk_index") == values(want, "topk_index"));
    for (const char* name : {"scores", "topk_weight", "y", "y_merged"}) {
      INFO(name);
      REQUIRE(got.at(name).shape == want.at(name).shape);
      auto g = values(got, name), w = values(want, name);
      double worst = 0;
      for (std::size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(g[i] - w[i]));
      CHECK(worst < 1e-5);
    }
  }
  CHECK(cases >= 4);
}

TEST_CASE("debug route names what is wrong with a case", "[cmd][route]") {
  TempDir dir;
  const fs::path golden = data_dir() / "golden/routing/phatgoose-small.safetensors";
  fs::copy_file(golden, dir / "lonely.safetensors");  // no lonely.json beside it
  auto r = run_gaggle({"debug", "route", "--case", (dir / "lonely.safetensors").string(), "--out",
                       (dir / "o.safetensors").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("lonely.json"));
  CHECK_FALSE(fs::exists(dir / "o.safetensors"));

  fs::copy_file(golden, dir / "bad.safetensors");
  write_text(dir / "bad.json", R"({"router": "moe", "top_k": 2})");
  r = run_gaggle({"debug", "route", "--case", (dir / "bad.safetensors").string(), "--out",
                  (dir / "o.safetensors").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("'router' is 'moe'"));

  auto usage = run_gaggle({"debug", "route", "--out", (dir / "o.safetensors").string()});
  CHECK(usage.exit_code == 2);
}
