// Retrieval and SMEAR in eval: an assembled model (gaggle assemble) scores what the same
// router built in memory over the pool scores, and retrieval picks the same experts.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <set>

#include "bundle/keys.h"
#include "bundle/sign.h"
#include "eval/fixtures.h"
#include "eval/method.h"
#include "eval/run.h"
#include "model/scoring.h"
#include "route/assembly.h"
#include "route/merged.h"
#include "route/routed_model.h"
#include "tasks/task_data.h"

using namespace gaggle;
using gaggle::test::TempDir;

namespace {

struct SignedPool {
  TempDir tmp;
  model::T5Model model{nullptr};
  std::string fp;
  std::vector<route::ExpertSource> experts;

  SignedPool() {
    model = test::make_tiny_base(tmp / "base");
    fp = model::base_fingerprint(tmp / "base");
    auto pub = bundle::generate_ed25519_keypair(tmp / "key", "alice@example.com");
    const std::string openssh = pub.to_openssh();
    test::write_text(tmp / "trust",
                     "alice@example.com namespaces=\"gaggle-bundle\" " + openssh.substr(0, openssh.find(' ', 12)) + "\n");
    for (int i = 0; i < 3; ++i) {
      test::TinyExpertOptions o;
      o.name = std::string("ex") + static_cast<char>('a' + i);
      o.seed = 40 + i;
      o.fingerprint = fp;
      o.retrieval = torch::randn({4, model->config().d_model}, at::detail::createCPUGenerator(50 + i));
      test::make_tiny_expert(tmp / "pool" / o.name, *model, o);
      bundle::sign_bundle(tmp / "pool" / o.name, bundle::SignOptions{tmp / "key"});
      experts.push_back(test::bundle_source(o.name, tmp / "pool" / o.name));
    }
  }

  std::filesystem::path assemble(route::RouterKind router, const std::string& out) {
    route::AssembleOptions a;
    a.base_dir = tmp / "base";
    a.trust_file = tmp / "trust";
    a.out_dir = tmp / out;
    a.router = router;
    a.experts = experts;
    route::assemble(a);
    return a.out_dir;
  }
};

void write_mixed_review_tasks(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::vector<tasks::Example> cls, gen;
  const char* texts[] = {"The film was wonderful.", "I hated every minute.", "A quiet, moving story.",
                         "Dull and far too long.", "An instant classic.", "Nothing works here.",
                         "Sharp writing, warm heart.", "A mess from start to end."};
  for (int i = 0; i < 8; ++i) {
    tasks::Example ex;
    ex.input = std::string("Review: ") + texts[i] + " Is it positive?";
    ex.choices = {"yes", "no", "maybe so"};
    ex.label = i % 3;
    ex.target = ex.choices[static_cast<std::size_t>(ex.label)];
    cls.push_back(ex);
    tasks::Example g;
    g.input = std::string("Repeat: ") + texts[i];
    g.target = texts[i];
    gen.push_back(g);
  }
  tasks::write_task_file(dir / "sentiment.jsonl", cls);
  tasks::write_task_file(dir / "repeat.jsonl", gen);
}

// Checks that `method` and `twin` scored every task alike (value and examples); returns how
// many tasks were compared.
int check_same_scores(const eval::Report& report, const std::string& method, const std::string& twin) {
  int compared = 0;
  for (const auto& r : report.rows) {
    if (r.method != method) continue;
    for (const auto& s : report.rows)
      if (s.method == twin && s.task == r.task) {
        INFO(r.task);
        CHECK(s.value == r.value);
        CHECK(s.n == r.n);
        ++compared;
      }
  }
  return compared;
}

// Evaluates the assembled model `dir` beside `routers` over the same pool, on write_mixed_review_tasks.
eval::Report eval_model_beside_routers(SignedPool& p, const std::filesystem::path& dir,
                                       std::vector<std::string> routers, bool with_base) {
  write_mixed_review_tasks(p.tmp / "heldout");
  eval::RunOptions o;
  o.base_dir = p.tmp / "base";
  o.model_dirs = {dir};
  o.pool_dir = p.tmp / "pool";
  o.routers = std::move(routers);
  o.with_base = with_base;
  o.tasks = {p.tmp / "heldout"};
  o.eval.batch_size = 3;
  o.eval.max_new_tokens = 6;
  return eval::run_eval(o);
}

}  // namespace

TEST_CASE("eval: a retrieval model from gaggle assemble chooses and scores like Retrieval over the pool",
          "[eval][retrieval]") {
  SignedPool p;
  auto dir = p.assemble(route::RouterKind::retrieval, "retrieval");

  // The same choice for every example of a batch of varied lengths.
  auto stack = std::make_shared<const eval::ExpertStack>(
      eval::load_experts(eval::read_pool_dir(p.tmp / "pool").experts, p.fp));
  auto method = eval::make_router_method(stack, "retrieval", 2);
  std::vector<std::vector<std::int64_t>> inputs;
  auto gen = at::detail::createCPUGenerator(3);
  for (int i = 0; i < 12; ++i) {
    auto ids = torch::randint(5, 3000, {3 + (i * 5) % 11}, gen, at::kLong);
    inputs.emplace_back(ids.data_ptr<std::int64_t>(), ids.data_ptr<std::int64_t>() + ids.numel());
    inputs.back().push_back(1);  // EOS
  }
  auto groups = method->assign(*p.model, inputs);
  c10::InferenceMode guard;
  p.model->clear_adapters();
  auto routed = route::RoutedModel::attach(*p.model, dir, p.fp);
  auto batch = model::make_batch(inputs, {}, p.model->config().pad_token_id);
  p.model->encode(batch.input_ids, batch.attention_mask);
  auto chosen = routed.retrieval_choice();
  REQUIRE(chosen.size() == groups.size());
  for (std::size_t i = 0; i < groups.size(); ++i) CHECK(chosen[i] == groups[i]);
  CHECK(std::set<int>(groups.begin(), groups.end()).size() >= 2);  // the batch mixes experts
  p.model->clear_adapters();

  write_mixed_review_tasks(p.tmp / "heldout");
  eval::RunOptions o;
  o.base_dir = p.tmp / "base";
  o.model_dirs = {dir};
  o.pool_dir = p.tmp / "pool";
  o.routers = {"retrieval"};
  o.tasks = {p.tmp / "heldout"};
  o.eval.batch_size = 5;
  o.eval.max_new_tokens = 6;
  auto report = eval::run_eval(o);
  REQUIRE(report.rows.size() == 4);
  CHECK(check_same_scores(report, "Retrieval", "Retrieval (retrieval)") == 2);
  // The routed model is traced: real tokens per chosen expert.
  REQUIRE(report.routing.size() == 2);
  std::int64_t total = 0;
  for (const auto& [module, counts] : report.routing[0].counts)
    for (auto c : counts) total += c;
  CHECK(total > 0);
}

TEST_CASE("eval: SMEAR over the pool scores like an assembled SMEAR model", "[eval][smear]") {
  SignedPool p;
  auto dir = p.assemble(route::RouterKind::smear, "smear");
  auto report = eval_model_beside_routers(p, dir, {"smear"}, /*with_base=*/true);
  std::vector<std::string> names;
  for (const auto& m : report.methods) names.push_back(m.name);
  CHECK(names == std::vector<std::string>{"Base", "SMEAR (smear)", "SMEAR"});
  CHECK(check_same_scores(report, "SMEAR", "SMEAR (smear)") == 2);
}

TEST_CASE("eval: merged-factors over the pool scores like an assembled merged-factors model, and differs from merged",
          "[eval][merged]") {
  SignedPool p;
  auto dir = p.assemble(route::RouterKind::merged_factors, "mf");
  auto report = eval_model_beside_routers(p, dir, {"merged", "merged-factors"}, /*with_base=*/false);
  std::set<std::string> names;
  for (const auto& m : report.methods) names.insert(m.name);
  CHECK(names == std::set<std::string>{"Merged (averaged A, B) (mf)", "Merged", "Merged (averaged A, B)"});
  CHECK(check_same_scores(report, "Merged (averaged A, B)", "Merged (averaged A, B) (mf)") == 2);

  // The two forms are different functions of the same experts.
  auto stack = std::make_shared<const eval::ExpertStack>(
      eval::load_experts(eval::read_pool_dir(p.tmp / "pool").experts, p.fp));
  REQUIRE(stack->modules.size() > 0);
  const std::string& m = stack->modules.front();
  const auto& A = stack->A.at(m);
  const auto& B = stack->B.at(m);
  route::MergedLinear products(A, B), factors(A, B, 0, route::MergeForm::factors);
  torch::NoGradGuard no_grad;
  auto u = torch::randn({5, A.size(2)}, at::detail::createCPUGenerator(9));
  CHECK((products.update(u) - factors.update(u)).abs().max().item<double>() > 1e-6);
}
