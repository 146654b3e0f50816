#include "train/gate.h"

#include <torch/torch.h>

#include "bundle/lora_scaling.h"
#include "bundle/manifest.h"
#include "io/atomic_file.h"
#include "io/error.h"
#include "io/sha256.h"
#include "model/fingerprint.h"
#include "model/base_model.h"
#include "model/token_format.h"
#include "tasks/task_data.h"
#include "text/tokenizer.h"
#include "train/detail/model_ops.h"
#include "train/distributed.h"
#include "train/expert.h"
#include "train/detail/room.h"

namespace gaggle::train {
namespace fs = std::filesystem;
namespace {

}  // namespace

GateResult train_gate(const GateOptions& options) {
  const fs::path adapter_path = options.expert_dir / "adapter.safetensors";
  auto manifest = bundle::read_manifest(options.expert_dir);
  const std::string fingerprint = model::base_fingerprint(options.base_dir);
  if (manifest.base_fingerprint != fingerprint)
    throw_error(ErrorCode::mismatch, kRoom,
                "expert '" + manifest.name + "' was trained on base " + manifest.base_fingerprint + ", but '" +
                    options.base_dir.string() + "' is " + fingerprint,
                "pass the --base the expert was trained on");
  auto saved = peft::read_tensors(adapter_path);
  const auto scaling = bundle::lora_scaling(manifest.body, (options.expert_dir / bundle::kManifestFile).string());

  auto tokenizer = text::Tokenizer::load(options.base_dir);
  TokenizeOptions tokenize = options.tokenize;
  tokenize.format = model::read_token_format(options.base_dir, tokenizer.eos_id());
  auto data = tokenize_examples(tasks::read_task_file(options.data), tokenizer, tokenize, options.data.string());
  const auto n = static_cast<int64_t>(data.examples.size());

  model::LoadOptions load;
  load.device = options.device;
  auto base = model::load_base(options.base_dir, load);
  auto lora = detail::lora_for_tensors(*base, saved, scaling, adapter_path.string());
  lora.set_mode(peft::LoraMode::gate);
  detail::attach(*base, lora);

  GateResult result;
  result.modules = static_cast<int64_t>(lora.order().size());
  LoopOptions loop = options.loop;
  loop.work_dir = work_dir_for(options.expert_dir, "gate");
  loop.eval_every = 0;
  loop.settings = {{"base_fingerprint", fingerprint},
                   {"adapter_sha256", io::sha256_file_hex(adapter_path)},
                   {"data_sha256", io::sha256_file_hex(options.data)},
                   {"steps", loop.steps},
                   {"lr", loop.lr},
                   {"batch_size", loop.batch_size},
                   {"accumulate", loop.accumulate},
                   {"seed", loop.seed},
                   {"max_input_len", options.tokenize.max_input_len},
                   {"max_target_len", options.tokenize.max_target_len}};
  const bool leader = !loop.collective || loop.collective->rank() == 0;
  loop.settings["world_size"] = loop.collective ? loop.collective->world_size() : 1;
  if (leader && !loop.resume && fs::exists(loop.work_dir)) fs::remove_all(loop.work_dir);

  LoopHooks hooks;
  hooks.num_examples = n;
  hooks.parameters = lora.trainable_parameters();
  hooks.named = lora.trainable_named();
  hooks.target_tokens = [&](const std::vector<int64_t>& idx) { return detail::target_tokens(data, idx); };
  hooks.loss = [&](const std::vector<int64_t>& idx) { return detail::batch_nll(*base, data, idx); };
  base->module().train();
  result.loop = run_training(loop, hooks);
  if (!leader) return result;  // rank 0 computes the baselines' keys and writes the bundle

  // The baselines' keys: average activations through the expert's own model (LoRA, no
  // gate), retrieval embeddings through the base model alone.
  base->module().eval();
  auto report = [&](const std::string& phase, int64_t done, int64_t total) {
    if (!options.loop.progress) return;
    TrainProgress p;
    p.phase = phase;
    p.step = done;
    p.total_steps = total;
    options.loop.progress(p);
  };
  lora.set_mode(peft::LoraMode::expert);
  auto act_idx = sample_indices(n, options.avg_act_examples, loop.seed);
  report("avg_act", 0, static_cast<int64_t>(act_idx.size()));
  lora.avg_act = detail::average_activations(*base, lora, data, act_idx, loop.batch_size);
  result.avg_act_examples = static_cast<int64_t>(act_idx.size());
  lora.set_mode(peft::LoraMode::gate);
  base->clear_adapters();
  auto emb_idx = sample_indices(n, options.embed_examples, loop.seed + 1);
  report("embed", 0, static_cast<int64_t>(emb_idx.size()));
  auto embeddings = detail::prompt_embeddings(*base, data, emb_idx, loop.batch_size);
  result.embed_examples = embeddings.size(0);

  auto tensors = lora.export_tensors();
  tensors[kRetrievalEmbeddings] = embeddings;

  io::AtomicDirectory dir(options.expert_dir);
  // Keep the bundle's other files (train-log.jsonl, a README, ...); replace what this run makes.
  for (const auto& entry : fs::recursive_directory_iterator(options.expert_dir)) {
    if (!entry.is_regular_file()) continue;
    auto rel = fs::relative(entry.path(), options.expert_dir);
    const std::string r = rel.generic_string();
    if (r == "manifest.json" || r == "manifest.json.sig" || r == "adapter.safetensors" || r == "gate-log.jsonl") continue;
    fs::create_directories((dir.path() / rel).parent_path());
    io::write_file_atomic(dir.path() / rel, io::read_file(entry.path()));
  }
  peft::write_tensors(dir.path() / "adapter.safetensors", tensors, {{"format", "gaggle-expert"}});
  std::string log;
  for (const auto& j : result.loop.log) log += j.dump() + "\n";
  io::write_file_atomic(dir.path() / "gate-log.jsonl", log);
  manifest.body["method"] = "phatgoose";
  manifest.body["gate"] = {{"steps", loop.steps},
                           {"lr", loop.lr},
                           {"warmup_fraction", loop.warmup_fraction},
                           {"clip_norm", loop.clip_norm},
                           {"batch_size", loop.batch_size},
                           {"accumulate", loop.accumulate},
                           {"seed", loop.seed},
                           {"init", "zeros"},
                           {"form", "sigmoid(v . u) scales the LoRA path; base and LoRA frozen"}};
  manifest.body["avg_act"] = {{"examples", result.avg_act_examples},
                              {"through", "the expert's model (LoRA on, no gate)"},
                              {"reduction", "token mean per example, then mean over examples"}};
  const bool decoder_only = base->architecture() != model::Architecture::t5;
  if (decoder_only)
    manifest.body["avg_act"]["reduction"] =
        "token mean per example over the prompt and target tokens (as gate training reads them), then mean over examples";
  manifest.body["retrieval"] = {
      {"tensor", kRetrievalEmbeddings},
      {"examples", result.embed_examples},
      {"embedding", decoder_only ? "base model final hidden state (after the last norm), mean-pooled over the prompt tokens"
                                 : "base model encoder output, mean-pooled over real tokens"}};
  bundle::write_manifest(dir.path(), manifest);
  dir.commit(/*replace=*/true);
  std::error_code ec;
  fs::remove_all(loop.work_dir, ec);
  return result;
}

}  // namespace gaggle::train
