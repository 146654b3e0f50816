// The whole gaggle pipeline on a decoder-only base (issue #14, "Decoder-only bases"): a
// tiny Llama made here (hidden 32, 2 layers, the T5 SentencePiece model saved under
// Llama's name tokenizer.model), two experts trained a few steps on two toy tasks, their
// gates, every router assembled, and the routed models scored by eval and run by
// generate (KV cache = no cache).
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include "bundle/keys.h"
#include "bundle/manifest.h"
#include "bundle/sign.h"
#include "eval/fixtures.h"
#include "eval/run.h"
#include "io/json_file.h"
#include "model/base_model.h"
#include "model/fingerprint.h"
#include "model/llama.h"
#include "route/assembly.h"
#include "route/routed_model.h"
#include "support/test_support.h"
#include "tasks/task_data.h"
#include "text/tokenizer.h"
#include "train/expert.h"
#include "train/gate.h"

using namespace gaggle;
using gaggle::test::TempDir;
namespace fs = std::filesystem;

namespace {

void make_tiny_llama_base(const fs::path& dir) {
  ::setenv("GAGGLE_SPM_SHIM", (fs::path(GAGGLE_BUILD_DIR) / "libgaggle_spm.so").c_str(), 1);
  model::LlamaConfig c;
  c.vocab_size = 32000, c.hidden_size = 32, c.intermediate_size = 64, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.head_dim = 8, c.max_position_embeddings = 128;
  c.bos_token_id = 0;  // the T5 vocabulary has no <s>: its <pad> piece stands in (never made from text)
  c.eos_token_id = 1;  // </s>
  torch::manual_seed(21);
  model::save_llama(model::make_llama(c, 0.1), dir);
  fs::copy_file(test::data_dir() / "t5-tokenizer" / "spiece.model", dir / "tokenizer.model");
}

std::vector<tasks::Example> toy_task(int which) {
  const std::vector<std::string> words = {"apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "candle",
                                          "forest", "glass", "horse", "bread"};
  const std::vector<std::string> answers = which == 0 ? std::vector<std::string>{"red", "blue", "green"}
                                                      : std::vector<std::string>{"one", "two", "three"};
  std::vector<tasks::Example> out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    tasks::Example e;
    e.input = (which == 0 ? "which colour is " : "how many of ") + words[i] + "?";
    e.choices = answers;
    e.label = static_cast<int>(i % answers.size());
    e.target = answers[i % answers.size()];
    out.push_back(e);
  }
  return out;
}

std::vector<std::int64_t> ids_of(const at::Tensor& t) {
  auto c = t.contiguous();
  return std::vector<std::int64_t>(c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel());
}

}  // namespace

TEST_CASE("Llama pipeline: train-expert, train-gate, assemble with every router, eval and generate",
          "[eval][llama]") {
  TempDir tmp;
  const fs::path base = tmp / "base";
  make_tiny_llama_base(base);
  CHECK(model::read_architecture(base) == model::Architecture::llama);

  // Two experts, a few steps each, and their gates.
  for (int t = 0; t < 2; ++t) {
    const std::string name = t == 0 ? "colours" : "counts";
    tasks::write_task_file(tmp / (name + ".jsonl"), toy_task(t));
    train::ExpertOptions e;
    e.base_dir = base;
    e.data = tmp / (name + ".jsonl");
    e.out_dir = tmp / "pool" / name;
    e.name = name;
    e.lora.rank = 4;
    e.loop.steps = 6;
    e.loop.batch_size = 4;
    e.loop.eval_every = 3;
    e.loop.save_every = 0;
    e.loop.log_every = 1;
    e.holdout_fraction = 0.25;
    auto r = train::train_expert(e);
    CHECK(r.loop.steps == 6);
    REQUIRE(r.loop.best_valid_loss);
    CHECK(std::isfinite(*r.loop.best_valid_loss));
    CHECK(r.loop.best_valid_accuracy);  // rank classification on the causal LM ran
    CHECK(r.modules.size() == 14);      // 2 layers × (q, k, v, o, gate, up, down)

    train::GateOptions g;
    g.base_dir = base;
    g.expert_dir = e.out_dir;
    g.data = e.data;
    g.loop.steps = 4;
    g.loop.batch_size = 4;
    g.loop.save_every = 0;
    g.avg_act_examples = 8;
    g.embed_examples = 6;
    auto gr = train::train_gate(g);
    CHECK(gr.embed_examples == 6);
    auto manifest = bundle::read_manifest(e.out_dir);
    CHECK(manifest.body["method"] == "phatgoose");
    CHECK(manifest.body["examples"]["architecture"] == "llama");
    CHECK(manifest.body["retrieval"]["embedding"].get<std::string>().find("prompt tokens") != std::string::npos);
  }

  auto pub = bundle::generate_ed25519_keypair(tmp / "key", "alice@example.com");
  const std::string openssh = pub.to_openssh();
  test::write_text(tmp / "trust",
                   "alice@example.com namespaces=\"gaggle-bundle\" " + openssh.substr(0, openssh.find(' ', 12)) + "\n");
  std::vector<route::ExpertSource> experts;
  for (const char* name : {"colours", "counts"}) {
    bundle::sign_bundle(tmp / "pool" / name, bundle::SignOptions{tmp / "key"});
    experts.push_back(test::bundle_source(name, tmp / "pool" / name));
  }

  // Every router assembles; each routed model generates the same with and without the cache.
  const std::string fp = model::base_fingerprint(base);
  auto tokenizer = text::Tokenizer::load(base);
  auto llama = model::load_llama(base);
  llama->eval();
  const model::TokenFormat format = llama->token_format(tokenizer.eos_id());
  const auto prompt = at::tensor(format.prompt(tokenizer.encode("which colour is apple?", false)), at::kLong);
  for (auto router : route::all_routers()) {
    const std::string key(route::router_name(router));
    INFO("router " << key);
    {
      route::AssembleOptions a;
      a.base_dir = base;
      a.trust_file = tmp / "trust";
      a.out_dir = tmp / ("routed-" + key);
      a.router = router;
      a.experts = router == route::RouterKind::single ? std::vector<route::ExpertSource>{experts[0]} : experts;
      auto assembly = route::assemble(a);
      CHECK(assembly.modules.size() == 14);
      llama->clear_adapters();
      auto routed = route::RoutedModel::attach(*llama, a.out_dir, fp);
      auto cached = ids_of(llama->greedy(prompt, 6, false));
      auto uncached = ids_of(llama->greedy_uncached(prompt, 6, false));
      CHECK(cached.size() == 6);
      CHECK(cached == uncached);
    }
  }
  llama->clear_adapters();

  // eval: the assembled PHATGOOSE model beside every router over the pool, rank
  // classification and exact match.
  fs::create_directories(tmp / "heldout");
  auto cls = toy_task(0);
  cls.resize(6);
  tasks::write_task_file(tmp / "heldout" / "colours.jsonl", cls);
  std::vector<tasks::Example> gen;
  for (auto e : toy_task(1)) {
    e.choices.clear();
    e.label = -1;
    gen.push_back(e);
  }
  gen.resize(4);
  tasks::write_task_file(tmp / "heldout" / "counts.jsonl", gen);
  eval::RunOptions o;
  o.base_dir = base;
  o.model_dirs = {tmp / "routed-phatgoose"};
  o.pool_dir = tmp / "pool";
  o.routers = {"phatgoose", "arrow", "average-activation", "retrieval", "merged", "merged-factors", "smear"};
  o.single_experts = true;
  o.with_base = true;
  o.tasks = {tmp / "heldout"};
  o.eval.batch_size = 4;
  o.eval.max_new_tokens = 4;
  auto report = eval::run_eval(o);
  std::set<std::string> methods;
  for (const auto& r : report.rows) {
    methods.insert(r.method);
    CHECK(r.value >= 0.0);
    CHECK(r.value <= 1.0);
    CHECK(r.n == (r.task == "colours" ? 6 : 4));
    CHECK(r.metric == (r.task == "colours" ? "accuracy" : "exact_match"));
  }
  for (const char* m : {"Base", "PHATGOOSE (routed-phatgoose)", "PHATGOOSE", "Arrow", "Retrieval", "SMEAR"}) {
    INFO(m);
    CHECK(methods.count(m) == 1);
  }
  // The assembled PHATGOOSE model scores what PHATGOOSE over the pool scores.
  for (const auto& r : report.rows)
    if (r.method == "PHATGOOSE (routed-phatgoose)")
      for (const auto& s : report.rows)
        if (s.method == "PHATGOOSE" && s.task == r.task) CHECK(s.value == r.value);
}
