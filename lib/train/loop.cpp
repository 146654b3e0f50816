#include "train/loop.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "io/atomic_file.h"
#include "io/error.h"
#include "io/json_file.h"
#include "train/checkpoint.h"
#include "train/data_order.h"
#include "train/detail/room.h"
#include "train/distributed.h"
#include "train/schedule.h"

namespace gaggle::train {
namespace fs = std::filesystem;
namespace {

void check_options(const LoopOptions& o) {
  auto positive = [](int64_t v, const char* flag) {
    if (v <= 0) throw_error(ErrorCode::usage, kRoom, std::string(flag) + " must be positive");
  };
  positive(o.steps, "--steps");
  positive(o.batch_size, "--batch-size");
  positive(o.accumulate, "--accumulate");
  positive(o.log_every, "--log-every");
  if (o.eval_every < 0) throw_error(ErrorCode::usage, kRoom, "--eval-every must be 0 (never) or positive");
  if (o.save_every < 0) throw_error(ErrorCode::usage, kRoom, "--save-every must be 0 (never) or positive");
  if (o.patience < 0) throw_error(ErrorCode::usage, kRoom, "--patience must be 0 (never stop early) or positive");
  if (!(o.lr > 0) || !std::isfinite(o.lr)) throw_error(ErrorCode::usage, kRoom, "--lr must be a positive number");
  if (o.warmup_fraction < 0 || o.warmup_fraction > 1)
    throw_error(ErrorCode::usage, kRoom, "the warm-up fraction must lie in [0, 1]");
  if (o.work_dir.empty()) throw_error(ErrorCode::usage, kRoom, "no work directory for checkpoints");
}

std::map<std::string, at::Tensor> snapshot(const std::map<std::string, at::Tensor>& named) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [k, t] : named) out[k] = t.detach().to(torch::kCPU).clone();
  return out;
}

void write_log(const fs::path& path, const std::vector<nlohmann::json>& log) {
  std::string text;
  for (const auto& j : log) text += j.dump() + "\n";
  io::write_file_atomic(path, text);
}

}  // namespace

double validation_score(const ValidResult& r) {
  // Accuracy dominates (scaled so any accuracy gain beats any loss change); loss breaks ties.
  if (r.accuracy) return -(*r.accuracy) * 1e6 + r.loss;
  return r.loss;
}

std::vector<nlohmann::json> read_train_log(const fs::path& path) {
  std::vector<nlohmann::json> out;
  if (!fs::exists(path)) return out;
  std::istringstream in(io::read_file(path));
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    out.push_back(io::parse_json(line, path.string() + ":" + std::to_string(n)));
  }
  return out;
}

LoopResult run_training(const LoopOptions& options, const LoopHooks& hooks) {
  check_options(options);
  if (hooks.num_examples <= 0) throw_error(ErrorCode::invalid, kRoom, "no training examples");
  if (hooks.parameters.empty()) throw_error(ErrorCode::invalid, kRoom, "nothing to train: no trainable parameters");
  fs::create_directories(options.work_dir);
  const fs::path ckpt_dir = options.work_dir / "checkpoint";
  const fs::path log_path = options.work_dir / "train-log.jsonl";

  const int rank = options.collective ? options.collective->rank() : 0;
  const int world = options.collective ? options.collective->world_size() : 1;
  const bool leader = rank == 0;
  // Packs tensors into one flat float32 buffer for a single collective call, and back.
  auto flatten = [](const std::vector<at::Tensor>& ts) {
    std::vector<at::Tensor> parts;
    for (const auto& t : ts) parts.push_back(t.detach().to(torch::kCPU, torch::kFloat32).reshape({-1}));
    return torch::cat(parts);
  };
  auto unflatten = [](const at::Tensor& flat, std::vector<at::Tensor>& ts) {
    torch::NoGradGuard no_grad;
    int64_t offset = 0;
    for (auto& t : ts) {
      t.copy_(flat.slice(0, offset, offset + t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  };

  WarmupConstant schedule{options.lr, options.steps, options.warmup_fraction};
  torch::optim::AdamW optimizer(hooks.parameters,
                                torch::optim::AdamWOptions(options.lr).weight_decay(options.weight_decay));
  DataOrder order(hooks.num_examples, options.seed);

  LoopResult result;
  CheckpointState state;
  state.settings = options.settings;
  std::map<std::string, at::Tensor> named = hooks.named;
  if (options.resume) {
    state = load_checkpoint(ckpt_dir, options.settings, named, result.best, optimizer);
    order.seek(state.epoch, state.position);
    result.resumed_from = state.step;
    for (auto& j : read_train_log(log_path))
      if (j.value("step", int64_t{0}) <= state.step) result.log.push_back(j);
  } else if (options.collective) {
    // Every rank starts from rank 0's initial weights.
    std::vector<at::Tensor> params = hooks.parameters;
    auto flat = flatten(params);
    options.collective->broadcast(flat, 0);
    unflatten(flat, params);
  }
  int64_t best_step = state.best_step;
  double best_score = state.best_score;
  std::optional<double> best_loss = state.best_valid_loss, best_acc = state.best_valid_accuracy;

  auto t0 = std::chrono::steady_clock::now();
  auto seconds_since_start = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  int64_t tokens_total = 0;
  double loss_since_report = 0;
  int64_t steps_since_report = 0;

  auto report = [&](TrainProgress p) {
    if (!options.progress || !leader) return;
    p.total_steps = options.steps;
    p.elapsed_seconds = seconds_since_start();
    p.tokens_per_second = p.elapsed_seconds > 0 ? tokens_total / p.elapsed_seconds : 0;
    int64_t done = p.step - result.resumed_from;
    p.eta_seconds = done > 0 ? p.elapsed_seconds / done * (options.steps - p.step) : 0;
    options.progress(p);
  };

  int64_t steps_run = state.step;
  for (int64_t step = state.step; step < options.steps; ++step) {
    const double lr = schedule.lr_at(step);
    for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    optimizer.zero_grad();

    // Every rank draws the same global batch and works on its own slice of it.
    std::vector<std::vector<int64_t>> micro;
    int64_t step_target_tokens = 0;
    for (int64_t a = 0; a < options.accumulate; ++a) {
      auto global = order.next(options.batch_size * world);
      step_target_tokens += hooks.target_tokens(global);
      micro.emplace_back(global.begin() + rank * options.batch_size, global.begin() + (rank + 1) * options.batch_size);
    }
    if (step_target_tokens <= 0)
      throw_error(ErrorCode::invalid, kRoom, "a batch has no target tokens", "every example needs a non-empty target");
    double step_loss = 0;
    int64_t step_tokens = 0;
    for (const auto& indices : micro) {
      MicroBatchLoss m = hooks.loss(indices);
      auto scaled = m.nll_sum / static_cast<double>(step_target_tokens);
      scaled.backward();
      step_loss += scaled.item<double>();
      step_tokens += m.tokens;
    }
    if (options.collective) {
      // Sum gradients (each already divided by the global token count), loss and tokens.
      std::vector<at::Tensor> grads;
      for (auto& p : hooks.parameters) {
        if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
        grads.push_back(p.mutable_grad());
      }
      auto flat = torch::cat({flatten(grads), torch::tensor({step_loss, static_cast<double>(step_tokens)}, torch::kFloat32)});
      options.collective->allreduce_sum(flat);
      step_loss = flat[flat.size(0) - 2].item<double>();
      step_tokens = static_cast<int64_t>(std::llround(flat[flat.size(0) - 1].item<double>()));
      unflatten(flat.slice(0, 0, flat.size(0) - 2), grads);
    }
    tokens_total += step_tokens;
    if (!std::isfinite(step_loss))
      throw_error(ErrorCode::invalid, kRoom, "the loss became " + std::to_string(step_loss) + " at step " +
                                                 std::to_string(step + 1),
                  "lower --lr or check the data");
    if (options.clip_norm > 0) torch::nn::utils::clip_grad_norm_(hooks.parameters, options.clip_norm);
    optimizer.step();

    const int64_t done = step + 1;
    steps_run = done;
    loss_since_report += step_loss;
    ++steps_since_report;

    bool log_now = done % options.log_every == 0 || done == options.steps;
    bool eval_now = hooks.validate && options.eval_every > 0 && (done % options.eval_every == 0 || done == options.steps);
    bool save_now = options.save_every > 0 && done % options.save_every == 0 && done < options.steps;

    nlohmann::json line;
    TrainProgress p;
    p.phase = "train";
    p.step = done;
    p.lr = lr;
    p.loss = loss_since_report / static_cast<double>(steps_since_report);  // mean since the last log line
    if (log_now) {
      line["step"] = done;
      line["loss"] = p.loss;
      line["lr"] = lr;
      line["tokens"] = tokens_total;
      loss_since_report = 0;
      steps_since_report = 0;
    }
    if (eval_now) {
      ValidResult v = hooks.validate();
      double score = validation_score(v);
      p.valid_loss = v.loss;
      p.valid_accuracy = v.accuracy;
      if (best_step < 0 || score < best_score) {
        best_step = done;
        best_score = score;
        best_loss = v.loss;
        best_acc = v.accuracy;
        result.best = snapshot(named);
        p.is_best = true;
      }
      if (line.is_null()) {
        line["step"] = done;
        line["loss"] = step_loss;
      }
      line["valid_loss"] = v.loss;
      if (v.accuracy) line["valid_accuracy"] = *v.accuracy;
      line["best"] = p.is_best;
      // Counted from the best step, not kept in a counter, so a resumed run stops where
      // the uninterrupted one would have.
      if (options.patience > 0 && done < options.steps && done - best_step >= options.patience * options.eval_every) {
        result.stopped_early = true;
        line["stopped_early"] = true;
      }
    }
    if (!line.is_null()) {
      result.log.push_back(line);
      if (leader) write_log(log_path, result.log);
    }
    if (save_now && !result.stopped_early) {
      state.step = done;
      state.epoch = order.epoch();
      state.position = order.position();
      state.best_step = best_step;
      state.best_score = best_score;
      state.best_valid_loss = best_loss;
      state.best_valid_accuracy = best_acc;
      if (leader) save_checkpoint(ckpt_dir, state, named, result.best, optimizer);
      if (options.collective) options.collective->barrier();
      p.checkpointed = true;
    }
    if (eval_now) {
      TrainProgress pv = p;
      pv.phase = "valid";
      report(pv);
    } else {
      report(p);  // every step: a terminal bar moves with each one
    }
    if (result.stopped_early) break;
  }

  result.steps = steps_run;
  result.best_step = best_step;
  result.best_valid_loss = best_loss;
  result.best_valid_accuracy = best_acc;
  if (best_step < 0) result.best = snapshot(named);
  result.seconds = seconds_since_start();
  result.tokens = tokens_total;
  TrainProgress p;
  p.phase = "done";
  p.step = steps_run;
  report(p);
  return result;
}

}  // namespace gaggle::train
