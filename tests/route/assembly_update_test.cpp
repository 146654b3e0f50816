// Incremental assembly (issue #16): `update_assembly` / `gaggle assemble --update` keep
// the rows of experts the routed model already holds and read only the added ones; the
// result must be the bytes a fresh assembly of the same experts writes, for every router.
#include <catch2/catch.hpp>

#include <map>
#include <string>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "route/assembly.h"
#include "route/routed_model.h"
#include "route/tensor_file.h"
#include "route/world.h"
#include "support/test_support.h"

using namespace gaggle;
namespace fs = std::filesystem;
using gaggle::test::World;

namespace {

// Every file under `dir` (relative path -> bytes).
std::map<std::string, std::string> files_of(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = io::read_file(e.path());
  return out;
}

route::AssembleOptions with_experts(const World& w, route::RouterKind router, const std::string& out,
                                    const std::vector<int>& which) {
  auto o = w.options(router, out);
  std::vector<route::ExpertSource> chosen;
  for (int i : which) chosen.push_back(o.experts.at(static_cast<std::size_t>(i)));
  o.experts = chosen;
  return o;
}

route::UpdateReport update(const World& w, const fs::path& model, const std::vector<int>& which) {
  route::UpdateOptions u;
  u.model_dir = model;
  u.trust_file = w.trust;
  u.experts = with_experts(w, route::RouterKind::phatgoose, "unused", which).experts;
  return route::update_assembly(u);
}

// Rewrites a format-3 model as formats 1 and 2 wrote it: every expert's factors stacked in
// the module files, no expert files (2 for the routers 1 could not say).
void downgrade_to_stacked(const fs::path& model, int format_version) {
  auto j = io::read_json_file(model / "assembly.json");
  std::vector<std::shared_ptr<const io::SafetensorsFile>> experts;
  for (auto& e : j["experts"]) {
    experts.push_back(std::make_shared<const io::SafetensorsFile>(io::SafetensorsFile::open(model / e["file"].get<std::string>())));
    e.erase("file");
  }
  for (const auto& m : j["modules"]) {
    const std::string name = m["name"], file = m["file"];
    std::vector<at::Tensor> A, B;
    for (const auto& f : experts) {
      A.push_back(route::read_tensor(f, name + ".A"));
      B.push_back(route::read_tensor(f, name + ".B"));
    }
    auto keys_file = std::make_shared<const io::SafetensorsFile>(io::SafetensorsFile::open(model / file));
    io::SafetensorsWriter w;
    route::add_tensor(w, name + ".A", at::stack(A));
    route::add_tensor(w, name + ".B", at::stack(B));
    if (keys_file->find(name + ".keys")) route::add_tensor(w, name + ".keys", route::read_tensor(keys_file, name + ".keys"));
    w.write(model / file);
  }
  experts.clear();
  fs::remove_all(model / "experts");
  j["format_version"] = format_version;
  io::write_json_file_atomic(model / "assembly.json", j);
}

at::Tensor forward(const World& w, const fs::path& model) {
  c10::InferenceMode guard;
  auto m = model::load_t5(w.base);
  auto routed = route::RoutedModel::attach(*m, model, w.fingerprint);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto ids = at::randint(2, 40, {2, 6}, gen, at::kLong);
  auto dec = at::randint(2, 40, {2, 4}, gen, at::kLong);
  return m->forward(ids, at::ones({2, 6}, at::kLong), dec);
}

}  // namespace

TEST_CASE("a routed model keeps each expert in a file of its own; an update hard-links the experts it keeps",
          "[route][assembly][update]") {
  World w(3);
  auto first = with_experts(w, route::RouterKind::phatgoose, "m", {0, 1});
  auto a = route::assemble(first);
  CHECK(a.format_version == 3);
  REQUIRE(a.experts[0].file == "experts/e0@1.0.0.safetensors");
  struct stat before {};
  REQUIRE(::stat((first.out_dir / a.experts[0].file).c_str(), &before) == 0);
  auto r = update(w, first.out_dir, {0, 1, 2});
  CHECK(r.kept == 2);
  struct stat after {};
  REQUIRE(::stat((first.out_dir / a.experts[0].file).c_str(), &after) == 0);
  CHECK(after.st_ino == before.st_ino);  // the same file, not a rewritten copy
  CHECK(fs::exists(first.out_dir / "experts/e2@1.0.0.safetensors"));
}

TEST_CASE("routed models of formats 1 and 2 (experts stacked per module) still load, and an update rewrites them as format 3",
          "[route][assembly][update]") {
  World w(3);
  for (auto router : {route::RouterKind::phatgoose, route::RouterKind::smear, route::RouterKind::merged}) {
    const std::string name(route::router_name(router));
    INFO(name);
    auto o = with_experts(w, router, name, {0, 1});
    route::assemble(o);
    const auto want = forward(w, o.out_dir);
    const int version = router == route::RouterKind::smear ? 2 : 1;
    downgrade_to_stacked(o.out_dir, version);
    CHECK(route::read_assembly(o.out_dir).format_version == version);
    CHECK(at::equal(forward(w, o.out_dir), want));
    auto r = update(w, o.out_dir, {0, 1, 2});
    CHECK(r.restacked);
    auto fresh = with_experts(w, router, name + "-fresh", {0, 1, 2});
    route::assemble(fresh);
    CHECK(files_of(o.out_dir) == files_of(fresh.out_dir));
  }
}

TEST_CASE("assemble --update adds and removes experts, byte-identical to a fresh assembly, for every router",
          "[route][assembly][update]") {
  World w(4);  // ranks 3, 2, 3, 2
  for (auto router : {route::RouterKind::phatgoose, route::RouterKind::arrow, route::RouterKind::average_activation,
                      route::RouterKind::retrieval, route::RouterKind::smear, route::RouterKind::merged}) {
    const std::string name(route::router_name(router));
    INFO(name);
    auto first = with_experts(w, router, name + "-updated", {0, 1, 2});
    route::assemble(first);
    const fs::path model = first.out_dir;

    // One added (in the middle of the routing order, as a pool sorted by name puts it).
    auto r = update(w, model, {0, 3, 1, 2});
    CHECK(r.kept == 3);
    REQUIRE(r.added == std::vector<std::string>{"e3@1.0.0"});
    CHECK(r.removed.empty());
    CHECK_FALSE(r.restacked);
    auto fresh = with_experts(w, router, name + "-fresh", {0, 3, 1, 2});
    route::assemble(fresh);
    CHECK(files_of(model) == files_of(fresh.out_dir));

    // One removed.
    r = update(w, model, {0, 3, 2});
    CHECK(r.kept == 3);
    CHECK(r.added.empty());
    CHECK(r.removed == std::vector<std::string>{"e1@1.0.0"});
    fresh = with_experts(w, router, name + "-fresh2", {0, 3, 2});
    route::assemble(fresh);
    CHECK(files_of(model) == files_of(fresh.out_dir));

    // Nothing new: nothing written.
    const auto before = fs::last_write_time(model / "assembly.json");
    r = update(w, model, {0, 3, 2});
    CHECK(r.unchanged);
    CHECK(fs::last_write_time(model / "assembly.json") == before);
  }
}

TEST_CASE("assemble --update restacks every row when the largest rank changes", "[route][assembly][update]") {
  World w(2);  // e0 rank 3, e1 rank 2
  auto first = with_experts(w, route::RouterKind::phatgoose, "m", {1});
  first.top_k = 1;
  route::assemble(first);
  auto r = update(w, first.out_dir, {0, 1});
  CHECK(r.restacked);
  CHECK(r.added == std::vector<std::string>{"e0@1.0.0"});
  auto fresh = with_experts(w, route::RouterKind::phatgoose, "fresh", {0, 1});
  fresh.top_k = 1;
  route::assemble(fresh);
  CHECK(files_of(first.out_dir) == files_of(fresh.out_dir));
}

TEST_CASE("assemble --update refuses another base and k above the experts, and leaves the model as it was",
          "[route][assembly][update]") {
  World w(3);
  auto first = with_experts(w, route::RouterKind::phatgoose, "m", {0, 1, 2});
  route::assemble(first);
  const auto before = files_of(first.out_dir);
  // k = 2 cannot route one expert.
  CHECK_THROWS_WITH(update(w, first.out_dir, {0}), Catch::Contains("--top-k 2"));
  // Another base.
  at::manual_seed(8);
  model::save_t5(model::make_t5(w.config), w.dir / "other-base");
  route::UpdateOptions u;
  u.model_dir = first.out_dir;
  u.base_dir = w.dir / "other-base";
  u.trust_file = w.trust;
  u.experts = first.experts;
  CHECK_THROWS_WITH(route::update_assembly(u), Catch::Contains("assembled on base"));
  CHECK(files_of(first.out_dir) == before);
}

TEST_CASE("gaggle assemble verifies with the pool's own trust file, --update reads only what is new and refuses a "
          "tampered tensor", "[route][assembly][update][cli]") {
  World w(3);
  const fs::path model = w.dir / "m";
  // No --trust: the pool's recorded trust file (as pull leaves it) is the rule.
  auto made = test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(), "--experts", "e0",
                                "e1", "--out", model.string(), "-q"});
  INFO(made.err);
  REQUIRE(made.exit_code == 0);
  const auto before = files_of(model);

  // e2 arrives with one byte of a tensor changed after signing: refused, nothing written.
  const fs::path adapter = w.pool / "bundles/e2/1.0.0/adapter.safetensors";
  const std::string good = io::read_file(adapter);
  std::string bad = good;
  bad[bad.size() - 3] = static_cast<char>(bad[bad.size() - 3] ^ 0x40);
  test::write_text(adapter, bad);
  auto refused = test::run_gaggle({"assemble", "--pool", w.pool.string(), "--update", model.string(), "-q"});
  CHECK(refused.exit_code == 1);
  CHECK_THAT(refused.err, Catch::Contains("e2"));
  CHECK(files_of(model) == before);
  // A fresh assemble refuses it too.
  auto fresh_refused = test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(), "--out",
                                         (w.dir / "x").string(), "-q"});
  CHECK(fresh_refused.exit_code == 1);
  CHECK_FALSE(fs::exists(w.dir / "x"));

  test::write_text(adapter, good);
  auto updated = test::run_gaggle({"assemble", "--pool", w.pool.string(), "--update", model.string()});
  INFO(updated.err);
  REQUIRE(updated.exit_code == 0);
  CHECK_THAT(updated.out, Catch::Contains("2 kept, 1 added, 0 removed"));
  CHECK_THAT(updated.out, Catch::Contains("+ e2@1.0.0"));
  auto fresh = test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(), "--out",
                                 (w.dir / "fresh").string(), "-q"});
  REQUIRE(fresh.exit_code == 0);
  CHECK(files_of(model) == files_of(w.dir / "fresh"));
  auto again = test::run_gaggle({"assemble", "--pool", w.pool.string(), "--update", model.string(), "-q"});
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.out, Catch::Contains("up to date"));

  auto both = test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(), "--update",
                                model.string(), "--out", (w.dir / "y").string()});
  CHECK(both.exit_code == 2);
  CHECK_THAT(both.err, Catch::Contains("exactly one of --out"));
}

TEST_CASE("assemble --factor-dtype bf16: 16-bit expert files that compute what float32 files of the rounded factors "
          "compute, kept by an update",
          "[route][assembly][bf16]") {
  World w(3, /*zero_b=*/false, /*with_tokenizer=*/false, {}, /*rank=*/8);  // rank 8: the CPU one-pass kernel's shapes
  auto o16 = with_experts(w, route::RouterKind::phatgoose, "m16", {0, 1});
  o16.factor_dtype = io::DType::BF16;
  auto a16 = route::assemble(o16);
  auto a32 = route::assemble(with_experts(w, route::RouterKind::phatgoose, "m32", {0, 1}));
  CHECK(a16.factor_dtype == io::DType::BF16);
  CHECK(route::read_assembly(o16.out_dir).factor_dtype == io::DType::BF16);
  CHECK(io::read_json_file(o16.out_dir / "assembly.json")["factor_dtype"] == "BF16");
  CHECK_FALSE(io::read_json_file(w.dir / "m32" / "assembly.json").contains("factor_dtype"));  // F32 models unchanged

  // The factors: BF16 in the file, half the bytes, each the float32 value rounded.
  const fs::path f16 = o16.out_dir / a16.experts[0].file, f32 = w.dir / "m32" / a32.experts[0].file;
  auto file16 = std::make_shared<const io::SafetensorsFile>(io::SafetensorsFile::open(f16));
  auto file32 = std::make_shared<const io::SafetensorsFile>(io::SafetensorsFile::open(f32));
  for (const auto& t : file16->tensors()) {
    INFO(t.name);
    CHECK(t.dtype == io::DType::BF16);
    auto want = route::read_tensor(file32, t.name).to(at::kBFloat16);
    CHECK(at::equal(route::read_tensor(file16, t.name, /*keep_bf16=*/true), want));
  }
  CHECK(fs::file_size(f16) < fs::file_size(f32) * 6 / 10);

  // The routed model on 16-bit factors equals one on float32 files of the same rounded values.
  for (const auto& e : a32.experts) {
    auto in = std::make_shared<const io::SafetensorsFile>(io::SafetensorsFile::open(w.dir / "m32" / e.file));
    io::SafetensorsWriter writer;
    for (const auto& t : in->tensors())
      route::add_tensor(writer, t.name, route::read_tensor(in, t.name).to(at::kBFloat16).to(at::kFloat));
    writer.set_metadata("format", "gaggle-routed-expert");
    in.reset();
    writer.write(w.dir / "m32" / e.file);
  }
  auto y16 = forward(w, o16.out_dir), y32 = forward(w, w.dir / "m32");
  CHECK((y16 - y32).abs().max().item<double>() < 1e-4);

  // An update keeps the dtype: the kept expert's file is linked, the added one written in BF16.
  auto r = update(w, o16.out_dir, {0, 1, 2});
  CHECK(r.kept == 2);
  CHECK(r.assembly.factor_dtype == io::DType::BF16);
  auto added = io::SafetensorsFile::open(o16.out_dir / "experts/e2@1.0.0.safetensors");
  for (const auto& t : added.tensors()) CHECK(t.dtype == io::DType::BF16);
  CHECK(forward(w, o16.out_dir).isfinite().all().item<bool>());

  // Routers that mix the experts' weights read 16-bit factors as float32.
  auto merged = with_experts(w, route::RouterKind::merged, "merged16", {0, 1, 2});
  merged.factor_dtype = io::DType::BF16;
  route::assemble(merged);
  auto merged32 = with_experts(w, route::RouterKind::merged, "merged32", {0, 1, 2});
  route::assemble(merged32);
  CHECK((forward(w, merged.out_dir) - forward(w, merged32.out_dir)).abs().max().item<double>() < 0.05);

  // Only F32 and BF16 are stored; a model claiming another dtype is refused by its schema.
  auto bad = with_experts(w, route::RouterKind::phatgoose, "m8", {0});
  bad.factor_dtype = io::DType::F16;
  CHECK_THROWS_WITH(route::assemble(bad), Catch::Contains("F32 or BF16"));
  auto j = io::read_json_file(o16.out_dir / "assembly.json");
  j["factor_dtype"] = "F16";
  io::write_json_file_atomic(o16.out_dir / "assembly.json", j);
  CHECK_THROWS_WITH(route::read_assembly(o16.out_dir), Catch::Contains("factor_dtype"));
}
