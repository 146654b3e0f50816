#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstring>
#include <sstream>

#include "io/atomic_file.h"
#include "io/error.h"
#include "io/json_file.h"
#include "peft/lora.h"
#include "train/detail/room.h"

namespace gaggle::train {
namespace fs = std::filesystem;
namespace {

nlohmann::json optional_json(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }
std::optional<double> json_optional(const nlohmann::json& j) {
  if (j.is_number()) return j.get<double>();
  return std::nullopt;
}

std::string rng_bytes() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  auto state = gen.get_state();
  return std::string(reinterpret_cast<const char*>(state.data_ptr<uint8_t>()), static_cast<size_t>(state.numel()));
}

void set_rng_bytes(const std::string& bytes, const fs::path& source) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  auto state = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  std::memcpy(state.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  try {
    gen.set_state(state);
  } catch (const c10::Error& e) {
    throw_error(ErrorCode::invalid, kRoom, source.string() + ": bad generator state: " + e.what_without_backtrace());
  }
}

}  // namespace

bool checkpoint_exists(const fs::path& dir) { return fs::exists(dir / "state.json"); }

void save_checkpoint(const fs::path& dir, const CheckpointState& state, const std::map<std::string, at::Tensor>& trainable,
                     const std::map<std::string, at::Tensor>& best, const torch::optim::Optimizer& optimizer) {
  io::AtomicDirectory out(dir);
  peft::write_tensors(out.path() / "trainable.safetensors", trainable);
  if (!best.empty()) peft::write_tensors(out.path() / "best.safetensors", best);
  {
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    std::ostringstream os;
    archive.save_to(os);
    io::write_file_atomic(out.path() / "optimizer.pt", os.str());
  }
  io::write_file_atomic(out.path() / "rng.bin", rng_bytes());
  nlohmann::json j;
  j["format_version"] = 1;
  j["step"] = state.step;
  j["epoch"] = state.epoch;
  j["position"] = state.position;
  j["best_step"] = state.best_step;
  j["best_score"] = state.best_score;
  j["best_valid_loss"] = optional_json(state.best_valid_loss);
  j["best_valid_accuracy"] = optional_json(state.best_valid_accuracy);
  j["settings"] = state.settings;
  io::write_json_file_atomic(out.path() / "state.json", j);
  out.commit(/*replace=*/true);
}

CheckpointState load_checkpoint(const fs::path& dir, const nlohmann::json& expected_settings,
                                std::map<std::string, at::Tensor>& trainable, std::map<std::string, at::Tensor>& best,
                                torch::optim::Optimizer& optimizer) {
  if (!checkpoint_exists(dir))
    throw_error(ErrorCode::not_found, kRoom, "no checkpoint to resume from at '" + dir.string() + "'",
                "run without --resume to start training from the beginning");
  auto j = io::read_json_file(dir / "state.json");
  CheckpointState state;
  try {
    if (j.at("format_version").get<int>() != 1)
      throw_error(ErrorCode::unsupported, kRoom, (dir / "state.json").string() + ": unknown checkpoint format_version");
    state.step = j.at("step").get<int64_t>();
    state.epoch = j.at("epoch").get<int64_t>();
    state.position = j.at("position").get<int64_t>();
    state.best_step = j.at("best_step").get<int64_t>();
    state.best_score = j.at("best_score").get<double>();
    state.best_valid_loss = json_optional(j.at("best_valid_loss"));
    state.best_valid_accuracy = json_optional(j.at("best_valid_accuracy"));
    state.settings = j.at("settings");
  } catch (const nlohmann::json::exception& e) {
    throw_error(ErrorCode::invalid, kRoom, (dir / "state.json").string() + ": " + e.what(),
                "the checkpoint is damaged; start again without --resume");
  }
  for (auto it = expected_settings.begin(); it != expected_settings.end(); ++it) {
    auto saved = state.settings.find(it.key());
    if (saved == state.settings.end() || *saved != it.value())
      throw_error(ErrorCode::mismatch, kRoom,
                  "cannot resume: setting '" + it.key() + "' was " +
                      (saved == state.settings.end() ? std::string("absent") : saved->dump()) +
                      " in the checkpoint, now " + it.value().dump(),
                  "resume with the same options as the interrupted run, or drop --resume (and use --force)");
  }
  auto saved = peft::read_tensors(dir / "trainable.safetensors");
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : trainable) {
      auto it = saved.find(name);
      if (it == saved.end() || it->second.sizes() != t.sizes())
        throw_error(ErrorCode::mismatch, kRoom,
                    (dir / "trainable.safetensors").string() + ": tensor '" + name + "' missing or of another shape");
      t.copy_(it->second);
    }
  }
  best.clear();
  if (fs::exists(dir / "best.safetensors")) best = peft::read_tensors(dir / "best.safetensors");
  {
    std::istringstream is(io::read_file(dir / "optimizer.pt"));
    torch::serialize::InputArchive archive;
    try {
      archive.load_from(is);
      optimizer.load(archive);
    } catch (const c10::Error& e) {
      throw_error(ErrorCode::invalid, kRoom, (dir / "optimizer.pt").string() + ": " + e.what_without_backtrace(),
                  "the checkpoint is damaged; start again without --resume");
    }
  }
  set_rng_bytes(io::read_file(dir / "rng.bin"), dir / "rng.bin");
  return state;
}

}  // namespace gaggle::train
