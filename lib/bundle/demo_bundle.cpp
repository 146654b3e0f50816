#include "bundle/demo_bundle.h"

#include <random>
#include <vector>

#include "io/atomic_file.h"
#include "io/error.h"
#include "io/safetensors.h"
#include "io/sha256.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace gaggle::bundle {

std::string demo_base_fingerprint(int d_model) {
  return "sha256:" + io::sha256_hex(std::string_view("gaggle demo base: t5-like, 1 layer, d_model=" + std::to_string(d_model)));
}

Manifest make_demo_bundle(const fs::path& out, const DemoBundleOptions& options) {
  if (options.rank < 1 || options.d_model < 1 || options.rank > options.d_model)
    throw_error(ErrorCode::invalid, "bundle", "demo bundle: rank must be between 1 and d_model");
  std::error_code ec;
  if (fs::exists(fs::symlink_status(out, ec)))
    throw_error(ErrorCode::exists, "bundle", "'" + out.string() + "' already exists", "choose a new --out directory");
  Manifest m;
  m.name = options.name;
  m.version = options.version;
  m.base_fingerprint = demo_base_fingerprint(options.d_model);
  const std::vector<std::string> modules = {
      "encoder.block.0.layer.0.SelfAttention.q", "encoder.block.0.layer.0.SelfAttention.v",
      "decoder.block.0.layer.0.SelfAttention.q", "decoder.block.0.layer.0.SelfAttention.v"};
  const std::int64_t r = options.rank, d = options.d_model;
  std::mt19937_64 rng(options.seed);
  std::normal_distribution<float> normal(0.0f, 0.01f);
  auto random = [&](std::size_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = normal(rng);
    return v;
  };
  io::SafetensorsWriter w;
  for (const auto& mod : modules) {
    auto a = random(static_cast<std::size_t>(r * d));
    auto b = random(static_cast<std::size_t>(d * r));
    auto g = random(static_cast<std::size_t>(d));
    w.add_f32(mod + ".lora_A", {r, d}, a);
    w.add_f32(mod + ".lora_B", {d, r}, b);
    w.add_f32(mod + ".gate", {d}, g);
  }
  w.set_metadata("format", "gaggle-demo");
  m.body = {{"method", "phatgoose"},
            {"rank", options.rank},
            {"modules", modules},
            {"hyperparameters", {{"lora_alpha", 1}, {"seed", options.seed}}},
            {"training_data", {{"summary", "none: random tensors from gaggle debug make-bundle"}, {"examples", 0}}},
            {"license", "CC0-1.0"},
            {"description", "a demo bundle with random tensors for a made-up tiny base; not a trained expert"}};
  io::AtomicDirectory dir(out);
  w.write(dir.path() / "adapter.safetensors");
  write_manifest(dir.path(), m);
  Manifest written = read_manifest(dir.path());
  dir.commit(false);
  return written;
}

}  // namespace gaggle::bundle
