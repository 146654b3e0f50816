#include "train/expert.h"

#include <torch/torch.h>

#include "bundle/manifest.h"
#include "io/atomic_file.h"
#include "io/error.h"
#include "io/pattern.h"
#include "io/sha256.h"
#include "model/fingerprint.h"
#include "model/base_model.h"
#include "model/token_format.h"
#include "tasks/task_data.h"
#include "text/tokenizer.h"
#include "train/detail/model_ops.h"
#include "train/distributed.h"
#include "train/detail/room.h"

namespace gaggle::train {
namespace fs = std::filesystem;
namespace {

void write_log_file(const fs::path& path, const std::vector<nlohmann::json>& log) {
  std::string text;
  for (const auto& j : log) text += j.dump() + "\n";
  io::write_file_atomic(path, text);
}

}  // namespace

fs::path work_dir_for(const fs::path& out_dir, const std::string& suffix) {
  fs::path abs = fs::absolute(out_dir).lexically_normal();
  if (!abs.has_filename()) abs = abs.parent_path();
  return abs.parent_path() / ("." + abs.filename().string() + "." + suffix);
}

ExpertResult train_expert(const ExpertOptions& options) {
  static const io::Pattern name_pattern("[a-z0-9][a-z0-9._-]{0,63}", io::Pattern::Anchor::full);
  if (!name_pattern.match(options.name).matched)
    throw_error(ErrorCode::usage, kRoom, "--name '" + options.name + "' is not a valid expert name",
                "use 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit");
  if (options.out_dir.empty()) throw_error(ErrorCode::usage, kRoom, "no --out directory");
  if (fs::exists(options.out_dir) && !options.force)
    throw_error(ErrorCode::exists, kRoom, "'" + options.out_dir.string() + "' already exists",
                "choose a new --out directory, or pass --force to replace it");

  // Data first: bad data should fail before a model is loaded.
  auto tokenizer = text::Tokenizer::load(options.base_dir);
  TokenizeOptions tokenize = options.tokenize;
  tokenize.format = model::read_token_format(options.base_dir, tokenizer.eos_id());
  auto all = tokenize_examples(tasks::read_task_file(options.data), tokenizer, tokenize, options.data.string());
  TokenizedData train, valid;
  if (!options.valid.empty()) {
    train = std::move(all);
    valid = tokenize_examples(tasks::read_task_file(options.valid), tokenizer, tokenize, options.valid.string());
  } else {
    std::tie(train, valid) = split_holdout(all, options.holdout_fraction, options.loop.seed);
  }
  if (static_cast<int64_t>(valid.examples.size()) > options.max_valid_examples) {
    TokenizedData cut;
    cut.has_choices = valid.has_choices;
    for (auto i : sample_indices(static_cast<int64_t>(valid.examples.size()), options.max_valid_examples, options.loop.seed))
      cut.examples.push_back(valid.examples[static_cast<size_t>(i)]);
    valid = std::move(cut);
  }

  ExpertResult result;
  result.out_dir = options.out_dir;
  result.train_examples = static_cast<int64_t>(train.examples.size());
  result.valid_examples = static_cast<int64_t>(valid.examples.size());
  result.truncated_inputs = train.truncated_inputs;
  result.base_fingerprint = model::base_fingerprint(options.base_dir);
  const std::string data_sha = io::sha256_file_hex(options.data);
  const std::string valid_sha = options.valid.empty() ? "" : io::sha256_file_hex(options.valid);

  model::LoadOptions load;
  load.device = options.device;
  auto base = model::load_base(options.base_dir, load);
  torch::manual_seed(options.loop.seed);
  auto lora = detail::make_lora(*base, options.targets, options.lora);
  lora.set_mode(peft::LoraMode::expert);
  detail::attach(*base, lora);
  result.modules = lora.order();

  LoopOptions loop = options.loop;
  loop.work_dir = work_dir_for(options.out_dir);
  loop.settings = {{"base_fingerprint", result.base_fingerprint},
                   {"data_sha256", data_sha},
                   {"valid_sha256", valid_sha},
                   {"steps", loop.steps},
                   {"lr", loop.lr},
                   {"weight_decay", loop.weight_decay},
                   {"warmup_fraction", loop.warmup_fraction},
                   {"clip_norm", loop.clip_norm},
                   {"batch_size", loop.batch_size},
                   {"accumulate", loop.accumulate},
                   {"seed", loop.seed},
                   {"rank", options.lora.rank},
                   {"alpha", options.lora.alpha},
                   {"targets", options.targets},
                   {"max_input_len", options.tokenize.max_input_len},
                   {"max_target_len", options.tokenize.max_target_len}};
  if (loop.patience > 0) loop.settings["patience"] = loop.patience;
  const bool leader = !loop.collective || loop.collective->rank() == 0;
  loop.settings["world_size"] = loop.collective ? loop.collective->world_size() : 1;
  if (leader && !loop.resume && fs::exists(loop.work_dir)) fs::remove_all(loop.work_dir);

  LoopHooks hooks;
  hooks.num_examples = result.train_examples;
  hooks.parameters = lora.trainable_parameters();
  hooks.named = lora.trainable_named();
  hooks.target_tokens = [&](const std::vector<int64_t>& idx) { return detail::target_tokens(train, idx); };
  hooks.loss = [&](const std::vector<int64_t>& idx) { return detail::batch_nll(*base, train, idx); };
  if (!valid.examples.empty())
    hooks.validate = [&] {
      base->module().eval();
      auto r = detail::validate(*base, valid, loop.batch_size);
      base->module().train();
      return r;
    };
  base->module().train();
  result.loop = run_training(loop, hooks);
  if (!leader) return result;  // rank 0 writes the bundle

  // The bundle: written whole in a temporary directory, then moved into place.
  io::AtomicDirectory dir(options.out_dir);
  peft::write_tensors(dir.path() / "adapter.safetensors", result.loop.best, {{"format", "gaggle-expert"}});
  write_log_file(dir.path() / "train-log.jsonl", result.loop.log);
  bundle::Manifest m;
  m.name = options.name;
  m.version = options.version;
  m.base_fingerprint = result.base_fingerprint;
  nlohmann::json training = {{"steps", result.loop.steps}, {"best_step", result.loop.best_step}};
  if (result.loop.best_valid_loss) training["valid_loss"] = *result.loop.best_valid_loss;
  if (result.loop.best_valid_accuracy) training["valid_accuracy"] = *result.loop.best_valid_accuracy;
  if (result.loop.stopped_early) training["stopped_early"] = true;
  m.body = {{"method", "lora"},
            {"rank", options.lora.rank},
            {"modules", result.modules},
            {"targets", options.targets},
            {"hyperparameters",
             {{"lora_alpha", options.lora.alpha},
              {"lora_init_std", options.lora.init_std},
              {"optimizer", "adamw"},
              {"lr", loop.lr},
              {"weight_decay", loop.weight_decay},
              {"warmup_fraction", loop.warmup_fraction},
              {"schedule", "linear warm-up, then constant"},
              {"clip_norm", loop.clip_norm},
              {"steps", loop.steps},
              {"batch_size", loop.batch_size},
              {"accumulate", loop.accumulate},
              {"max_input_len", options.tokenize.max_input_len},
              {"max_target_len", options.tokenize.max_target_len},
              {"seed", loop.seed}}},
            {"training_data",
             {{"file", options.data.filename().string()},
              {"sha256", data_sha},
              {"examples", result.train_examples},
              {"valid_examples", result.valid_examples},
              {"valid_source", options.valid.empty() ? "held-back share of the training file" : options.valid.filename().string()},
              {"has_choices", train.has_choices}}},
            {"training", training}};
  if (base->architecture() != model::Architecture::t5)  // (T5 manifests stay as they were)
    m.body["examples"] = {{"architecture", model::architecture_name(base->architecture())},
                          {"read_as", "bos + input + target + eos, one causal sequence"},
                          {"loss", "cross-entropy on the target tokens (and eos) only; the prompt is never scored"}};
  if (loop.patience > 0) m.body["hyperparameters"]["patience"] = loop.patience;
  if (!options.license.empty()) m.body["license"] = options.license;
  if (!options.description.empty()) m.body["description"] = options.description;
  bundle::write_manifest(dir.path(), m);
  dir.commit(/*replace=*/options.force);
  std::error_code ec;
  fs::remove_all(loop.work_dir, ec);
  return result;
}

}  // namespace gaggle::train
