#pragma once
// The route tests' world: a tiny base, a key, a trust file and a pool of signed bundles
// bound to the base (LoRA factors, gates, average activations, retrieval embeddings).
#include <ATen/ATen.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/keys.h"
#include "bundle/manifest.h"
#include "bundle/sign.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "model/fingerprint.h"
#include "model/t5.h"
#include "route/assembly.h"
#include "route/tensor_file.h"
#include "support/test_support.h"

namespace gaggle::test {

namespace fs = std::filesystem;

inline model::T5Config tiny_config() {
  model::T5Config c;
  c.vocab_size = 40, c.d_model = 16, c.d_kv = 4, c.d_ff = 24, c.num_heads = 4;
  c.num_layers = 1, c.num_decoder_layers = 2, c.gated = true, c.tie_word_embeddings = false;
  c.relative_attention_num_buckets = 8, c.relative_attention_max_distance = 16;
  return c;
}

struct Expert {
  std::string name;
  std::map<std::string, at::Tensor> tensors;  // <module>.lora_A, .lora_B, .gate, .avg_act
  std::int64_t rank;
};

// A tiny base, a key, a trust file and a pool of signed bundles bound to the base.
struct World {
  test::TempDir dir;
  fs::path base, pool, trust, key;
  std::string fingerprint;
  std::vector<Expert> experts;
  model::T5Config config = tiny_config();

  // embeddings(base_dir, i): expert i's "retrieval_embeddings" (default: random [2 + i, d_model]).
  using Embeddings = std::function<at::Tensor(const fs::path&, int)>;

  // rank: every expert's LoRA rank (0: mixed ranks 3, 2, 3, ..., padded at assembly).
  explicit World(int n_experts, bool zero_b = false, bool with_tokenizer = false, const Embeddings& embeddings = {},
                 std::int64_t rank = 0) {
    if (with_tokenizer) config.vocab_size = 32100;  // spiece.model's 32000 pieces + 100 sentinels
    base = dir / "base";
    pool = dir / "pool";
    trust = dir / "allowed_signers";
    key = dir / "key";
    at::manual_seed(7);
    model::save_t5(model::make_t5(config), base);
    if (with_tokenizer) fs::copy_file(test::data_dir() / "t5-tokenizer/spiece.model", base / "spiece.model");
    fingerprint = model::base_fingerprint(base);
    auto pub = bundle::generate_ed25519_keypair(key, "alice@example.com");
    std::string openssh = pub.to_openssh();
    test::write_text(trust, "alice@example.com namespaces=\"gaggle-bundle\" " + openssh.substr(0, openssh.find(' ', 12)) + "\n");
    nlohmann::json pool_json = {{"format_version", 1}, {"hub", "test"}, {"commit", "0"}, {"updated", "2026-01-01T00:00:00Z"},
                                {"bundles", nlohmann::json::array()}};
    for (int i = 0; i < n_experts; ++i) {
      Expert e;
      e.name = "e" + std::to_string(i);
      e.rank = rank > 0 ? rank : (i % 2 ? 2 : 3);  // mixed ranks: padded at assembly
      for (const auto& m : model::t5_linear_names(config)) {
        auto shape = model::t5_linear_shape(config, m);
        e.tensors[m + ".lora_A"] = at::randn({e.rank, shape[1]}) * 0.5;
        e.tensors[m + ".lora_B"] = zero_b ? at::zeros({shape[0], e.rank}) : at::randn({shape[0], e.rank}) * 0.5;
        e.tensors[m + ".gate"] = at::randn({shape[1]});
        e.tensors[m + ".avg_act"] = at::randn({shape[1]});
      }
      e.tensors["retrieval_embeddings"] = embeddings ? embeddings(base, i) : at::randn({2 + i, config.d_model});
      fs::path dir_i = pool / "bundles" / e.name / "1.0.0";
      write_bundle(dir_i, e, fingerprint);
      pool_json["bundles"].push_back({{"name", e.name}, {"version", "1.0.0"}, {"path", "bundles/" + e.name + "/1.0.0"},
                                      {"principal", "alice@example.com"},
                                      {"manifest_sha256", io::sha256_hex(io::read_file(dir_i / "manifest.json"))}});
      experts.push_back(std::move(e));
    }
    test::write_text(pool / "pool.json", pool_json.dump(2));
    // As gaggle pull leaves it: the trust file the pool was verified with (hub/pool_trust.h).
    fs::create_directories(pool / ".gaggle");
    fs::copy_file(trust, pool / ".gaggle" / "allowed_signers", fs::copy_options::overwrite_existing);
  }

  void write_bundle(const fs::path& dir_i, const Expert& e, const std::string& fp) const {
    fs::create_directories(dir_i);
    io::SafetensorsWriter w;
    for (const auto& [name, t] : e.tensors) route::add_tensor(w, name, t);
    w.write(dir_i / "adapter.safetensors");
    bundle::Manifest m;
    m.name = e.name;
    m.version = "1.0.0";
    m.base_fingerprint = fp;
    m.body = {{"method", "lora"}, {"rank", e.rank}, {"hyperparameters", {{"lora_alpha", 1.0}}}};
    bundle::write_manifest(dir_i, m);
    bundle::sign_bundle(dir_i, bundle::SignOptions{key});
  }

  // An unverified source (assemble verifies it against `trust`); named fields, so that
  // ExpertSource's later members keep their defaults without a warning.
  static route::ExpertSource source(const std::string& name, const fs::path& bundle_dir) {
    route::ExpertSource s;
    s.name = name;
    s.version = "1.0.0";
    s.dir = bundle_dir;
    return s;
  }

  route::AssembleOptions options(route::RouterKind router, const std::string& out) const {
    route::AssembleOptions o;
    o.base_dir = base;
    o.trust_file = trust;
    o.out_dir = dir / out;
    o.router = router;
    for (const auto& e : experts) o.experts.push_back(source(e.name, pool / "bundles" / e.name / "1.0.0"));
    return o;
  }

  // The experts' raw tensors for one module, stacked: A [N, r_max, d_in], B [N, d_out, r_max] / r.
  std::pair<at::Tensor, at::Tensor> stacked(const std::string& m) const {
    std::int64_t r_max = 0;
    for (const auto& e : experts) r_max = std::max(r_max, e.rank);
    auto shape = model::t5_linear_shape(config, m);
    auto A = at::zeros({static_cast<std::int64_t>(experts.size()), r_max, shape[1]});
    auto B = at::zeros({static_cast<std::int64_t>(experts.size()), shape[0], r_max});
    for (std::size_t i = 0; i < experts.size(); ++i) {
      const auto& e = experts[i];
      A[i].narrow(0, 0, e.rank).copy_(e.tensors.at(m + ".lora_A"));
      B[i].narrow(1, 0, e.rank).copy_(e.tensors.at(m + ".lora_B") / static_cast<double>(e.rank));
    }
    return {A, B};
  }
};

}  // namespace gaggle::test
