// Retrieval (issue #7 item 1): the index and the choice (route/retrieval.h), assembled
// retrieval models (one expert per example, a batch mixing experts) against each
// example alone with its chosen expert's single assembly, and the errors.
#include "route/retrieval.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <map>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/json_file.h"
#include "model/t5.h"
#include "route/assembly.h"
#include "route/routed_model.h"
#include "route/world.h"
#include "support/tensor_compare.h"
#include "support/test_support.h"

using namespace gaggle;
using gaggle::test::max_diff;
namespace fs = std::filesystem;
using gaggle::test::Expert;
using gaggle::test::World;

namespace {

// Four inputs, three of them padded, and decoder inputs.
struct Inputs {
  at::Tensor ids, mask, dec;
  std::vector<std::int64_t> lengths{7, 5, 7, 3};
};

Inputs inputs() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  Inputs in;
  in.ids = at::randint(2, 40, {4, 7}, gen, at::kLong);
  in.mask = at::zeros({4, 7}, at::kLong);
  for (std::int64_t b = 0; b < 4; ++b) {
    in.mask[b].narrow(0, 0, in.lengths[b]).fill_(1);
    if (in.lengths[b] < 7) in.ids[b].narrow(0, in.lengths[b], 7 - in.lengths[b]).zero_();
  }
  in.dec = at::randint(2, 40, {4, 4}, gen, at::kLong);
  return in;
}

// The experts the four inputs are made to choose.
const std::vector<std::int64_t> kChosen{1, 2, 0, 1};

// Expert i's embeddings: two random rows and the base's mean-pooled encoding of every
// input meant to choose it (cosine 1: nothing beats it).
at::Tensor embeddings_for(const fs::path& base, int i) {
  c10::InferenceMode guard;
  auto m = model::load_t5(base);
  auto in = inputs();
  auto query = route::mean_pool(m->encode(in.ids, in.mask), in.mask);
  std::vector<at::Tensor> rows{at::randn({2, query.size(1)})};
  for (std::int64_t b = 0; b < 4; ++b)
    if (kChosen[b] == i) rows.push_back(query[b].unsqueeze(0) * (1.0 + b));  // any length: cosine
  return at::cat(rows, 0).clone();
}

}  // namespace

TEST_CASE("retrieve_experts: the argmax over experts of the largest cosine, ties to the lower expert",
          "[route][retrieval]") {
  auto e0 = at::tensor({1.0f, 0.0f, 0.0f, 1.0f}).view({2, 2});  // rows (1, 0), (0, 1)
  auto e1 = at::tensor({3.0f, 3.0f}).view({1, 2});              // (1, 1) / sqrt 2
  auto e2 = at::tensor({-1.0f, 0.0f, 0.0f, -2.0f, 1.0f, 1.0f}).view({3, 2});
  auto index = route::make_retrieval_index({e0, e1, e2}, {"a", "b", "c"});
  CHECK(index.embeddings.size(0) == 6);
  CHECK(at::equal(index.expert, at::tensor({0, 0, 1, 2, 2, 2}, at::kLong)));
  CHECK(max_diff(index.embeddings.norm(2, {1}), at::ones({6})) < 1e-6);
  route::check_retrieval_index(index, "test");
  auto query = at::tensor({5.0f, 0.1f, 1.0f, 1.1f, -1.0f, -0.2f, 2.0f, 2.0f}).view({4, 2});
  // (5, .1): e0 row 0; (1, 1.1): e1 (1,1) beats e0's (0, 1); (-1, -.2): e2's (-1, 0);
  // (2, 2): e1 and e2's (1, 1) tie at cosine 1 -> the lower, e1.
  CHECK(at::equal(route::retrieve_experts(index, query), at::tensor({0, 1, 2, 1}, at::kLong)));
  CHECK_THROWS_AS(route::retrieve_experts(index, at::ones({1, 3})), Error);
  CHECK_THROWS_WITH(route::make_retrieval_index({e0, at::ones({2, 3})}, {"a", "bundle 'b/1'"}),
                    Catch::Contains("bundle 'b/1'"));
  route::RetrievalIndex broken = index;
  broken.expert = at::tensor({0, 1, 0, 2, 2, 2}, at::kLong);
  CHECK_THROWS_WITH(route::check_retrieval_index(broken, "x.safetensors"), Catch::Contains("x.safetensors"));
  // Pooling skips padding.
  auto hidden = at::tensor({1.0f, 2.0f, 3.0f, 100.0f}).view({1, 4, 1});
  CHECK(route::mean_pool(hidden, at::tensor({1, 1, 1, 0}, at::kLong).view({1, 4})).item<float>() == Approx(2.0));
}

TEST_CASE("a retrieval model runs each example of a mixed batch with its chosen expert, as that expert alone",
          "[route][retrieval]") {
  World w(3, false, false, embeddings_for);
  auto a = route::assemble(w.options(route::RouterKind::retrieval, "ret"));
  CHECK(a.format_version == 3);
  CHECK(a.top_k == 0);
  CHECK(a.retrieval.file == "retrieval.safetensors");
  CHECK(a.retrieval.rows == 2 * 3 + 4);
  CHECK(a.retrieval.d_model == w.config.d_model);
  auto read = route::read_assembly(w.dir / "ret");
  CHECK(read.router == route::RouterKind::retrieval);
  CHECK(read.retrieval.rows == a.retrieval.rows);
  CHECK(read.format_version == 3);
  for (int e = 0; e < 3; ++e) {
    auto o = w.options(route::RouterKind::single, "single" + std::to_string(e));
    o.experts = {o.experts[static_cast<std::size_t>(e)]};
    CHECK(route::assemble(o).format_version == 3);
  }

  c10::InferenceMode guard;
  auto in = inputs();
  auto m = model::load_t5(w.base);
  auto rm = route::RoutedModel::attach(*m, w.dir / "ret", w.fingerprint);
  CHECK(rm.traced());
  rm.enable_trace();
  auto logits = m->forward(in.ids, in.mask, in.dec);
  CHECK(rm.retrieval_choice() == kChosen);
  auto plain = model::load_t5(w.base)->forward(in.ids, in.mask, in.dec);
  CHECK(max_diff(logits, plain) > 1e-3);

  std::vector<model::T5Model> alone;
  for (int e = 0; e < 3; ++e) {
    alone.push_back(model::load_t5(w.base));
    route::RoutedModel::attach(*alone.back(), w.dir / ("single" + std::to_string(e)), w.fingerprint);
  }
  for (std::int64_t b = 0; b < 4; ++b) {
    INFO("example " << b);
    auto ids = in.ids[b].narrow(0, 0, in.lengths[b]).unsqueeze(0);
    auto y = alone[kChosen[b]]->forward(ids, at::ones_like(ids), in.dec[b].unsqueeze(0));
    CHECK(max_diff(logits[b], y[0]) < 1e-4);
  }

  // The trace counts real tokens per chosen expert: encoder side 7+3 / 5 / 7, decoder 4 each.
  auto trace = rm.trace_json();
  CHECK(trace["router"] == "retrieval");
  CHECK(trace["modules"].size() == a.modules.size());
  for (const auto& [module, counts] : trace["modules"].items()) {
    const bool encoder_side = module.rfind("encoder.", 0) == 0 || module.find("EncDecAttention.k") != std::string::npos ||
                              module.find("EncDecAttention.v") != std::string::npos;
    INFO(module);
    CHECK(counts.get<std::vector<std::int64_t>>() ==
          (encoder_side ? std::vector<std::int64_t>{7, 10, 5} : std::vector<std::int64_t>{4, 8, 4}));
  }

  // Scoring repeats each encoding once per answer choice: decoder rows find their expert.
  auto enc = m->encode(in.ids, in.mask);
  auto repeat = at::tensor({0, 0, 1, 2, 3, 3}, at::kLong);
  auto labels = at::randint(2, 40, {6, 3}, at::kLong);
  labels[1][2] = -100;
  labels[4].narrow(0, 1, 2).fill_(-100);
  auto nll = m->token_nll_from_encoded(enc.index_select(0, repeat), in.mask.index_select(0, repeat), labels);
  CHECK(rm.retrieval_choice() == std::vector<std::int64_t>{1, 1, 2, 0, 1, 1});
  for (std::int64_t j = 0; j < 6; ++j) {
    const std::int64_t b = repeat[j].item<std::int64_t>();
    auto ids = in.ids[b].narrow(0, 0, in.lengths[b]).unsqueeze(0);
    auto want = alone[kChosen[b]]->token_nll(ids, at::ones_like(ids), labels[j].unsqueeze(0));
    INFO("row " << j);
    CHECK(max_diff(nll[j], want[0]) < 1e-4);
  }
  // Decoding rows that no encode produced is an error, not a silent guess.
  CHECK_THROWS_WITH(m->decode(in.dec, at::randn_like(enc), in.mask), Catch::Contains("encode"));

  // Greedy generation: cached equals uncached, and each row equals its expert alone.
  auto cached = m->greedy(in.ids, in.mask, 5, false);
  CHECK(at::equal(cached, m->greedy_uncached(in.ids, in.mask, 5, false)));
  for (std::int64_t b = 0; b < 4; ++b) {
    auto ids = in.ids[b].narrow(0, 0, in.lengths[b]).unsqueeze(0);
    CHECK(at::equal(cached[b], alone[kChosen[b]]->greedy(ids, at::ones_like(ids), 5, false)[0]));
  }
}

TEST_CASE("assembling retrieval names a bundle without retrieval embeddings, and versions are checked",
          "[route][retrieval]") {
  World w(2);
  Expert plain = w.experts[0];
  plain.name = "plain";
  plain.tensors.erase("retrieval_embeddings");
  w.write_bundle(w.dir / "plain", plain, w.fingerprint);
  auto o = w.options(route::RouterKind::retrieval, "out");
  o.experts.push_back(World::source("plain", w.dir / "plain"));
  try {
    route::assemble(o);
    FAIL("assembled a bundle without embeddings");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::invalid);
    CHECK_THAT(e.what(), Catch::Contains("bundle 'plain/1.0.0'") && Catch::Contains("retrieval_embeddings"));
    CHECK_THAT(e.hint(), Catch::Contains("train-gate"));
  }
  CHECK_FALSE(fs::exists(w.dir / "out"));
  // Embeddings of another width (another base).
  Expert wide = w.experts[1];
  wide.name = "wide";
  wide.tensors["retrieval_embeddings"] = at::randn({3, w.config.d_model + 1});
  w.write_bundle(w.dir / "wide", wide, w.fingerprint);
  auto o2 = w.options(route::RouterKind::retrieval, "out2");
  o2.experts.push_back(World::source("wide", w.dir / "wide"));
  CHECK_THROWS_WITH(route::assemble(o2), Catch::Contains("bundle 'wide/1.0.0'") && Catch::Contains("[3, 17]"));

  // A retrieval assembly needs format_version 2 or later; claiming 1 (a reader of 1 would
  // have misread it), or 4, is refused; a missing index is named.
  route::assemble(w.options(route::RouterKind::retrieval, "ok"));
  const fs::path json_path = w.dir / "ok" / "assembly.json";
  auto j = io::read_json_file(json_path);
  CHECK(j["format_version"] == 3);
  auto j1 = j;
  j1["format_version"] = 1;
  test::write_text(json_path, j1.dump());
  CHECK_THROWS_WITH(route::read_assembly(w.dir / "ok"), Catch::Contains("format_version 2"));
  j1["format_version"] = 4;
  test::write_text(json_path, j1.dump());
  CHECK_THROWS_WITH(route::read_assembly(w.dir / "ok"), Catch::Contains("newer"));
  auto j2 = j;
  j2.erase("retrieval");
  test::write_text(json_path, j2.dump());
  CHECK_THROWS_WITH(route::read_assembly(w.dir / "ok"), Catch::Contains("/retrieval"));
  test::write_text(json_path, j.dump());
  fs::remove(w.dir / "ok" / "retrieval.safetensors");
  auto m = model::load_t5(w.base);
  CHECK_THROWS_WITH(route::RoutedModel::attach(*m, w.dir / "ok", w.fingerprint), Catch::Contains("retrieval.safetensors"));
}

TEST_CASE("gaggle assemble --router retrieval and smear, generate --model with a trace, inspect",
          "[route][retrieval][cli]") {
  World w(3, false, true, {}, 2);  // one rank: eval stacks the pool's experts as they are
  for (const char* router : {"retrieval", "smear"}) {
    INFO(router);
    const fs::path out = w.dir / router;
    auto r = test::run_gaggle({"assemble", "--base", w.base.string(), "--pool", w.pool.string(), "--trust",
                               w.trust.string(), "--router", router, "--out", out.string(), "-q"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains(std::string("router ") + router) && Catch::Contains("3 experts"));
    const bool retrieval = std::string(router) == "retrieval";
    std::vector<std::string> args{"generate", "--model", out.string(), "--max-new-tokens", "4"};
    if (retrieval) args.insert(args.end(), {"--trace", (w.dir / "trace.json").string()});
    auto g = test::run_gaggle(args, "hello world\nsecond line, a longer one\n");
    INFO(g.err);
    REQUIRE(g.exit_code == 0);
    CHECK(std::count(g.out.begin(), g.out.end(), '\n') == 2);
    if (retrieval) {  // real tokens per chosen expert
      auto trace = nlohmann::json::parse(test::read_text(w.dir / "trace.json"));
      CHECK(trace["router"] == router);
      std::int64_t total = 0;
      for (const auto& c : trace["total"]) total += c.get<std::int64_t>();
      CHECK(total > 0);
    } else {  // a soft merge chooses no expert: nothing to trace
      auto t = test::run_gaggle({"generate", "--model", out.string(), "--input", "hi", "--trace", "t.json"});
      CHECK(t.exit_code == 2);
      CHECK_THAT(t.err, Catch::Contains("nothing to trace"));
    }
    auto inspect = test::run_gaggle({"inspect", out.string()});
    REQUIRE(inspect.exit_code == 0);
    CHECK_THAT(inspect.out, Catch::Contains(router) && Catch::Contains("per example") && Catch::Contains("3 experts"));
    auto json = test::run_gaggle({"inspect", "--json", out.string()});
    REQUIRE(json.exit_code == 0);
    CHECK(nlohmann::json::parse(json.out)["router"] == router);
  }
  // gaggle eval: the assembled models score what the same routers built over the pool score.
  std::string tasks;
  const char* texts[] = {"a fine day", "rain again", "the cat sat", "numbers one two", "blue green red",
                         "hello there", "good night", "long long ago"};
  for (int i = 0; i < 8; ++i)
    tasks += nlohmann::json{{"input", std::string("Say: ") + texts[i]}, {"choices", {"yes", "no", "maybe"}},
                            {"label", i % 3}}.dump() + "\n";
  test::write_text(w.dir / "tasks.jsonl", tasks);
  auto e = test::run_gaggle({"eval", "--base", w.base.string(), "--model", (w.dir / "retrieval").string(), "--model",
                             (w.dir / "smear").string(), "--pool", w.pool.string(), "--routers", "retrieval,smear",
                             "--tasks", (w.dir / "tasks.jsonl").string(), "--batch-size", "3", "--json", "-q"});
  INFO(e.err);
  REQUIRE(e.exit_code == 0);
  const auto report = nlohmann::json::parse(e.out);
  std::map<std::string, double> value;
  for (const auto& row : report["rows"]) value[row["method"].get<std::string>()] = row["value"].get<double>();
  REQUIRE(value.size() == 4);
  CHECK(value.at("Retrieval (retrieval)") == value.at("Retrieval"));
  CHECK(value.at("SMEAR (smear)") == value.at("SMEAR"));

  auto help = test::run_gaggle({"assemble", "--help"});
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.out, Catch::Contains("retrieval") && Catch::Contains("smear") && Catch::Contains("merged") &&
                           !Catch::Contains("not built"));
}
