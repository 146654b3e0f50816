#pragma once
// Tiny bases and experts made in the test: a random T5 (d_model 16, the real T5
// vocabulary so the real tokenizer applies) saved as a Hugging Face checkpoint with
// spiece.model beside it, and expert bundles with random LoRA factors, gates, average
// activations and retrieval embeddings.
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bundle/manifest.h"
#include "model/fingerprint.h"
#include "model/t5.h"
#include "peft/lora.h"
#include "route/assembly.h"
#include "support/test_support.h"

namespace gaggle::test {

// An unverified expert bundle at version 1.0.0 (assemble verifies it against the trust file).
inline route::ExpertSource bundle_source(const std::string& name, const std::filesystem::path& dir) {
  route::ExpertSource s;
  s.name = name;
  s.version = "1.0.0";
  s.dir = dir;
  return s;
}

inline model::T5Config tiny_eval_config() {
  model::T5Config c;
  c.vocab_size = 32128;
  c.d_model = 16;
  c.d_kv = 4;
  c.d_ff = 24;
  c.num_layers = 2;
  c.num_decoder_layers = 2;
  c.num_heads = 2;
  c.relative_attention_num_buckets = 8;
  c.relative_attention_max_distance = 16;
  return c;
}

// Writes a random base (seeded) into `dir` with the real spiece.model; returns the model.
inline model::T5Model make_tiny_base(const std::filesystem::path& dir, std::uint64_t seed = 0) {
  // The tokenizer's SentencePiece shim is built beside the gaggle binary.
  ::setenv("GAGGLE_SPM_SHIM", (std::filesystem::path(GAGGLE_BUILD_DIR) / "libgaggle_spm.so").c_str(), 1);
  torch::manual_seed(seed);
  auto m = model::make_t5(tiny_eval_config());
  model::save_t5(m, dir);
  std::filesystem::copy_file(data_dir() / "t5-tokenizer" / "spiece.model", dir / "spiece.model",
                             std::filesystem::copy_options::overwrite_existing);
  return m;
}

struct TinyExpertOptions {
  std::string name;
  std::uint64_t seed = 1;
  std::int64_t rank = 4;
  double scale = 0.5;         // std of the random A and B
  bool gates = true;          // write .gate, .avg_act and retrieval_embeddings
  bool manifest = true;
  std::string fingerprint;    // the manifest's base fingerprint
  torch::Tensor retrieval;    // [n, d_model]; undefined: random
};

// An expert bundle directory for `model`'s every linear layer.
inline void make_tiny_expert(const std::filesystem::path& dir, const model::T5ModelImpl& model,
                             const TinyExpertOptions& o) {
  std::filesystem::create_directories(dir);
  auto gen = at::detail::createCPUGenerator(o.seed);
  std::map<std::string, torch::Tensor> t;
  for (const auto& name : model.linear_names()) {
    auto w = model.linear_weight(name);
    const auto d_out = w.size(0), d_in = w.size(1);
    t[name + ".lora_A"] = at::randn({o.rank, d_in}, gen) * o.scale;
    t[name + ".lora_B"] = at::randn({d_out, o.rank}, gen) * o.scale;
    if (o.gates) {
      t[name + ".gate"] = at::randn({d_in}, gen);
      t[name + ".avg_act"] = at::randn({d_in}, gen);
    }
  }
  if (o.gates)
    t["retrieval_embeddings"] = o.retrieval.defined() ? o.retrieval : at::randn({3, model.config().d_model}, gen);
  peft::write_tensors(dir / "adapter.safetensors", t);
  if (o.manifest) {
    bundle::Manifest m;
    m.name = o.name;
    m.version = "1.0.0";
    m.base_fingerprint = o.fingerprint;
    m.body = {{"method", o.gates ? "phatgoose" : "lora"}, {"rank", o.rank}};
    bundle::write_manifest(dir, m);
  }
}

}  // namespace gaggle::test
