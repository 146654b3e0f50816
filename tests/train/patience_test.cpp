// --patience: the loop stops once N validations in a row bring nothing better than the
// best, keeps the best step's weights, and a resumed run stops where an uninterrupted
// one would. The model is one scalar; validation scores are scripted.
#include <torch/torch.h>  // torch first (glog's CHECK), then Catch

#include <catch2/catch.hpp>

#include "support/test_support.h"
#include "train/loop.h"

using namespace gaggle;
namespace fs = std::filesystem;

namespace {

struct ScriptedRun {
  train::LoopResult result;
  std::vector<int64_t> validated_at;
};

// A scalar w trained towards 3 by (w - 3)^2; validation i (1-based) reports losses[i-1],
// or the last one once the script runs out.
ScriptedRun run(const fs::path& work, const std::vector<double>& losses, int64_t patience, int64_t steps,
                bool resume = false, int64_t save_every = 0) {
  at::Tensor w = torch::zeros({1}, torch::requires_grad());
  train::LoopOptions o;
  o.steps = steps;
  o.eval_every = 10;
  o.save_every = save_every;
  o.patience = patience;
  o.batch_size = 1;
  o.work_dir = work;
  o.resume = resume;
  ScriptedRun out;
  train::LoopHooks h;
  h.num_examples = 4;
  h.parameters = {w};
  h.named = {{"w", w}};
  h.target_tokens = [](const std::vector<int64_t>& idx) { return static_cast<int64_t>(idx.size()); };
  h.loss = [&](const std::vector<int64_t>& idx) {
    return train::MicroBatchLoss{(w - 3).pow(2).sum() * static_cast<double>(idx.size()), 1};
  };
  h.validate = [&] {
    // The step is recovered from the scripted position: validation n happens at step 10 n.
    std::size_t n = out.validated_at.size() + (resume ? 2 : 0);
    out.validated_at.push_back(static_cast<int64_t>(10 * (n + 1)));
    return train::ValidResult{losses[std::min(n, losses.size() - 1)], std::nullopt};
  };
  out.result = train::run_training(o, h);
  return out;
}

}  // namespace

TEST_CASE("patience stops the loop after N validations without a better score", "[train][patience]") {
  test::TempDir tmp;
  // Best at step 30 (loss 0.5), then nothing better: with patience 3 the run stops at step 60.
  const std::vector<double> losses = {0.9, 0.7, 0.5, 0.6, 0.5, 0.8, 0.4};
  auto r = run(tmp / "p3", losses, 3, 200);
  CHECK(r.result.stopped_early);
  CHECK(r.result.steps == 60);
  CHECK(r.result.best_step == 30);
  CHECK(r.validated_at == std::vector<int64_t>{10, 20, 30, 40, 50, 60});
  CHECK(r.result.log.back()["stopped_early"] == true);
  CHECK(r.result.log.back()["step"] == 60);

  // Patience 0 (the default) runs every step and finds the later best.
  auto all = run(tmp / "p0", losses, 0, 100);
  CHECK_FALSE(all.result.stopped_early);
  CHECK(all.result.steps == 100);
  CHECK(all.result.best_step == 70);

  // Patience that the ceiling reaches first: the run ends at --steps, not early.
  auto ceiling = run(tmp / "p9", losses, 9, 80);
  CHECK_FALSE(ceiling.result.stopped_early);
  CHECK(ceiling.result.steps == 80);

  // The kept weights are the best step's (30), not the last step's: the same as those an
  // uninterrupted run (same --steps, so the same schedule) keeps from that step.
  const std::vector<double> flat_after_30 = {0.9, 0.7, 0.5, 0.6};
  auto stopped = run(tmp / "p3b", flat_after_30, 3, 200);
  auto uninterrupted = run(tmp / "p3c", flat_after_30, 0, 200);
  REQUIRE(stopped.result.steps == 60);
  REQUIRE(uninterrupted.result.best_step == 30);
  CHECK(at::equal(stopped.result.best.at("w"), uninterrupted.result.best.at("w")));
}

TEST_CASE("patience counts from the best step, so a resumed run stops where an uninterrupted one does",
          "[train][patience]") {
  test::TempDir tmp;
  const std::vector<double> losses = {0.9, 0.5, 0.6, 0.7, 0.8, 0.9};
  auto whole = run(tmp / "whole", losses, 3, 200);
  CHECK(whole.result.steps == 50);
  CHECK(whole.result.best_step == 20);

  // A run cut short after its checkpoint at step 20 (the best so far), then resumed with
  // the full budget: validations at 30, 40 and 50 bring nothing better, so it stops at 50.
  auto cut = run(tmp / "resumed", losses, 3, 30, false, 20);
  CHECK(cut.result.steps == 30);
  REQUIRE(fs::exists(tmp / "resumed" / "checkpoint"));
  auto resumed = run(tmp / "resumed", losses, 3, 200, true);
  CHECK(resumed.result.resumed_from == 20);
  CHECK(resumed.validated_at == std::vector<int64_t>{30, 40, 50});
  CHECK(resumed.result.stopped_early);
  CHECK(resumed.result.steps == 50);
  CHECK(resumed.result.best_step == 20);
}

TEST_CASE("a negative patience is a usage error", "[train][patience]") {
  test::TempDir tmp;
  CHECK_THROWS_WITH(run(tmp / "neg", {0.5}, -1, 10), Catch::Contains("--patience"));
}
