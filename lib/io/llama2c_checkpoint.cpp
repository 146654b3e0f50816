#include "io/llama2c_checkpoint.h"

#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/json_file.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"

namespace gaggle::io {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void bad(const fs::path& bin, const std::string& what) {
  throw_error(ErrorCode::invalid, "io", bin.string() + ": " + what,
              "expected a llama2.c checkpoint (legacy version 0, as run.c reads it)");
}

// Walks the float32 arrays in file order.
class Reader {
 public:
  Reader(std::span<const std::byte> bytes, std::size_t offset) : bytes_(bytes), offset_(offset) {}
  std::vector<float> take(std::int64_t count) {
    std::vector<float> out(static_cast<std::size_t>(count));
    std::memcpy(out.data(), bytes_.data() + offset_, out.size() * sizeof(float));  // little-endian host, as run.c
    offset_ += out.size() * sizeof(float);
    return out;
  }
  void skip(std::int64_t count) { offset_ += static_cast<std::size_t>(count) * sizeof(float); }

 private:
  std::span<const std::byte> bytes_;
  std::size_t offset_;
};

// Rows of one layer's wq or wk from llama2.c's interleaved RoPE pairs to HF's halves.
std::vector<float> permute_rows(const std::vector<float>& w, std::int64_t heads, std::int64_t head_size, std::int64_t d_in) {
  std::vector<float> out(w.size());
  const std::int64_t half = head_size / 2;
  for (std::int64_t h = 0; h < heads; ++h)
    for (std::int64_t j = 0; j < half; ++j)
      for (std::int64_t pair = 0; pair < 2; ++pair) {
        const float* src = w.data() + (h * head_size + 2 * j + pair) * d_in;
        float* dst = out.data() + (h * head_size + pair * half + j) * d_in;
        std::memcpy(dst, src, static_cast<std::size_t>(d_in) * sizeof(float));
      }
  return out;
}

}  // namespace

Llama2cHeader convert_llama2c_to_hf(const fs::path& bin, const fs::path& out_dir) {
  MappedFile file(bin);
  const auto bytes = file.bytes();
  if (bytes.size() < 7 * sizeof(std::int32_t)) bad(bin, "shorter than the 28-byte header");
  if (std::memcmp(bytes.data(), "42ka", 4) == 0) {  // uint32 0x616b3432 little-endian
    std::int32_t version = 0;
    if (bytes.size() >= 8) std::memcpy(&version, bytes.data() + 4, 4);
    throw_error(ErrorCode::unsupported, "io",
                bin.string() + ": a llama2.c version " + std::to_string(version) + " export (magic \"ak42\") is not supported",
                "convert the legacy version 0 format (export.py --version 0), which run.c reads");
  }
  std::int32_t h[7];
  std::memcpy(h, bytes.data(), sizeof h);
  Llama2cHeader c;
  c.dim = h[0], c.hidden_dim = h[1], c.n_layers = h[2], c.n_heads = h[3], c.n_kv_heads = h[4];
  c.shared_classifier = h[5] > 0;
  c.vocab_size = h[5] < 0 ? -static_cast<std::int64_t>(h[5]) : h[5];
  c.seq_len = h[6];
  const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  const std::int64_t values[7] = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len};
  for (int i = 0; i < 7; ++i)
    if (values[i] <= 0 || values[i] > (1 << 24))
      bad(bin, std::string("header field ") + names[i] + " = " + std::to_string(values[i]) + " is out of range");
  if (c.dim % c.n_heads != 0) bad(bin, "dim " + std::to_string(c.dim) + " is not a multiple of n_heads " + std::to_string(c.n_heads));
  if (c.n_heads % c.n_kv_heads != 0)
    bad(bin, "n_heads " + std::to_string(c.n_heads) + " is not a multiple of n_kv_heads " + std::to_string(c.n_kv_heads));
  const std::int64_t hs = c.dim / c.n_heads, kv = c.n_kv_heads * hs, d = c.dim, f = c.hidden_dim, L = c.n_layers;
  if (hs % 2 != 0) bad(bin, "head size " + std::to_string(hs) + " is odd: rotary embeddings need pairs");
  // Each value is at most 2^24; bound the products before computing them in int64.
  const double approx = (static_cast<double>(c.vocab_size) * 2 + 6.0 * static_cast<double>(L) * (static_cast<double>(f) + d)) * d +
                        static_cast<double>(c.seq_len) * hs;
  if (approx > 1e14) bad(bin, "header describes an implausibly large model (" + std::to_string(approx) + " floats)");
  const std::int64_t floats = c.vocab_size * d + L * d + L * d * d + 2 * L * kv * d + L * d * d + L * d + 3 * L * f * d + d +
                              c.seq_len * hs + (c.shared_classifier ? 0 : c.vocab_size * d);
  const std::uint64_t want = 28 + static_cast<std::uint64_t>(floats) * 4;
  if (bytes.size() != want)
    bad(bin, "holds " + std::to_string(bytes.size()) + " bytes; its header (dim " + std::to_string(d) + ", hidden_dim " +
                 std::to_string(f) + ", " + std::to_string(L) + " layers, " + std::to_string(c.n_heads) + "/" +
                 std::to_string(c.n_kv_heads) + " heads, vocab " + std::to_string(c.vocab_size) + ", seq_len " +
                 std::to_string(c.seq_len) + (c.shared_classifier ? ", shared classifier" : ", own classifier") +
                 ") implies " + std::to_string(want));

  Reader r(bytes, 28);
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  auto layer = [](std::int64_t i, const char* rest) { return "model.layers." + std::to_string(i) + "." + rest + ".weight"; };
  auto put = [&](const std::string& name, std::vector<std::int64_t> shape, const std::vector<float>& v) {
    w.add_f32(name, std::move(shape), std::span<const float>(v.data(), v.size()));
  };
  put("model.embed_tokens.weight", {c.vocab_size, d}, r.take(c.vocab_size * d));
  for (std::int64_t i = 0; i < L; ++i) put(layer(i, "input_layernorm"), {d}, r.take(d));
  for (std::int64_t i = 0; i < L; ++i) put(layer(i, "self_attn.q_proj"), {d, d}, permute_rows(r.take(d * d), c.n_heads, hs, d));
  for (std::int64_t i = 0; i < L; ++i)
    put(layer(i, "self_attn.k_proj"), {kv, d}, permute_rows(r.take(kv * d), c.n_kv_heads, hs, d));
  for (std::int64_t i = 0; i < L; ++i) put(layer(i, "self_attn.v_proj"), {kv, d}, r.take(kv * d));
  for (std::int64_t i = 0; i < L; ++i) put(layer(i, "self_attn.o_proj"), {d, d}, r.take(d * d));
  for (std::int64_t i = 0; i < L; ++i) put(layer(i, "post_attention_layernorm"), {d}, r.take(d));
  for (std::int64_t i = 0; i < L; ++i) put(layer(i, "mlp.gate_proj"), {f, d}, r.take(f * d));  // w1
  for (std::int64_t i = 0; i < L; ++i) put(layer(i, "mlp.down_proj"), {d, f}, r.take(d * f));  // w2
  for (std::int64_t i = 0; i < L; ++i) put(layer(i, "mlp.up_proj"), {f, d}, r.take(f * d));    // w3
  put("model.norm.weight", {d}, r.take(d));
  r.skip(c.seq_len * hs);  // freq_cis_real, freq_cis_imag: run.c recomputes RoPE too
  if (!c.shared_classifier) put("lm_head.weight", {c.vocab_size, d}, r.take(c.vocab_size * d));

  nlohmann::json config = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"hidden_size", d},
      {"intermediate_size", f},
      {"num_hidden_layers", L},
      {"num_attention_heads", c.n_heads},
      {"num_key_value_heads", c.n_kv_heads},
      {"vocab_size", c.vocab_size},
      {"max_position_embeddings", c.seq_len},
      {"hidden_act", "silu"},
      {"rms_norm_eps", 1e-5},  // run.c's rmsnorm
      {"rope_theta", 10000.0},
      {"rope_scaling", nullptr},
      {"tie_word_embeddings", c.shared_classifier},
      {"bos_token_id", 1},
      {"eos_token_id", 2},
      {"torch_dtype", "float32"},
  };
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw_error(ErrorCode::io, "io", "cannot create '" + out_dir.string() + "': " + ec.message());
  w.write(out_dir / "model.safetensors");  // weights first: a config.json beside them means both are whole
  write_json_file_atomic(out_dir / "config.json", config);
  return c;
}

}  // namespace gaggle::io
