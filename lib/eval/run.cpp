#include "eval/run.h"

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <set>

#include "io/error.h"
#include "model/fingerprint.h"
#include "model/base_model.h"
#include "route/assembly.h"
#include "route/router.h"
#include "text/tokenizer.h"
#include "eval/detail/room.h"

namespace fs = std::filesystem;

namespace gaggle::eval {
namespace {

nlohmann::ordered_json expert_json(const ExpertInfo& e, const std::string& role) {
  nlohmann::ordered_json j = {{"name", e.name}, {"version", e.version}, {"role", role}, {"dir", e.dir.generic_string()}};
  j["signer"] = e.signer.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(e.signer);
  j["key_fingerprint"] = e.key_fingerprint.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(e.key_fingerprint);
  j["base_fingerprint"] = e.base_fingerprint.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(e.base_fingerprint);
  return j;
}

ExpertInfo resolve_expert(const std::string& spec, const PoolInfo* pool) {
  if (fs::is_directory(spec)) {
    ExpertInfo e = describe_expert(spec);
    if (pool) {  // an expert directory inside the pool keeps its verified signer
      for (const auto& p : pool->experts)
        if (fs::weakly_canonical(p.dir) == fs::weakly_canonical(e.dir)) return p;
    }
    return e;
  }
  if (pool) {
    const ExpertInfo* found = nullptr;
    for (const auto& p : pool->experts)
      if (p.name == spec || label_of(p) == spec) found = &p;  // the last = the highest version
    if (found) return *found;
    throw_error(ErrorCode::usage, kRoom, "expert '" + spec + "' is neither a directory nor in pool '" + pool->dir.string() + "'",
                "list the pool with 'gaggle pool list " + pool->dir.string() + "'");
  }
  throw_error(ErrorCode::usage, kRoom, "expert '" + spec + "' is not a directory",
              "pass an expert directory, or --pool DIR to name experts in a pool");
}

}  // namespace

Report run_eval(const RunOptions& given) {
  RunOptions options = given;
  if (options.base_dir.empty() && !options.model_dirs.empty()) {
    options.base_dir = route::read_assembly(options.model_dirs.front()).base_dir;
    if (options.base_dir.empty() || !fs::is_directory(options.base_dir))
      throw_error(ErrorCode::not_found, kRoom,
                  "routed model '" + options.model_dirs.front().string() + "' was assembled on base '" +
                      options.base_dir.string() + "', which is not there",
                  "pass the base with --base DIR");
  }
  if (options.base_dir.empty()) throw_error(ErrorCode::usage, kRoom, "no base model", "pass --base DIR or --model DIR");
  if (!options.routers.empty() && options.pool_dir.empty())
    throw_error(ErrorCode::usage, kRoom, "--routers needs --pool", "pass the pool the routers route among: --pool DIR");
  if (options.single_experts && options.pool_dir.empty())
    throw_error(ErrorCode::usage, kRoom, "--single-experts needs --pool", "pass --pool DIR");
  for (const auto& r : options.routers) {
    auto kind = route::parse_router(r);
    if (!kind || *kind == route::RouterKind::single)
      throw_error(ErrorCode::usage, kRoom, "router '" + r + "' cannot be evaluated",
                  "use any of " + route::router_names(/*include_single=*/false) + " (for one expert: --expert)");
  }
  if (!options.pool_dir.empty() && options.routers.empty() && !options.single_experts && options.experts.empty())
    throw_error(ErrorCode::usage, kRoom, "--pool alone evaluates nothing",
                "add --routers phatgoose,arrow,... and/or --single-experts");

  // Tasks first: a typo in a path fails before the model loads.
  auto sets = tasks::enumerate_task_sets(options.tasks);
  auto task_list = load_tasks(sets, options.eval);

  model::LoadOptions load;
  load.device = options.device;
  std::shared_ptr<model::BaseModel> model = model::load_base(options.base_dir, load);
  auto tokenizer = text::Tokenizer::load(options.base_dir);
  const std::string fingerprint = model::base_fingerprint(options.base_dir);

  std::unique_ptr<PoolInfo> pool;
  if (!options.pool_dir.empty()) pool = std::make_unique<PoolInfo>(read_pool_dir(options.pool_dir, options.trust_file));

  std::vector<std::unique_ptr<Method>> owned;
  nlohmann::ordered_json experts_meta = nlohmann::ordered_json::array();
  nlohmann::ordered_json models_meta = nlohmann::ordered_json::array();
  std::vector<const Method*> model_methods;
  for (const auto& dir : options.model_dirs) {
    owned.push_back(make_routed_model_method(dir, fingerprint));
    model_methods.push_back(owned.back().get());
    const route::Assembly a = route::read_assembly(dir);
    nlohmann::ordered_json experts = nlohmann::ordered_json::array();
    for (const auto& e : a.experts)
      experts.push_back({{"name", e.name}, {"version", e.version}, {"signer", e.principal},
                         {"key_fingerprint", e.key_fingerprint}, {"manifest_sha256", e.manifest_sha256}});
    models_meta.push_back({{"dir", dir.generic_string()}, {"method", owned.back()->name()},
                           {"router", std::string(route::router_name(a.router))}, {"top_k", a.top_k},
                           {"experts", experts}});
  }
  std::set<std::string> named;
  for (const auto& spec : options.experts) {
    ExpertInfo e = resolve_expert(spec, pool.get());
    if (!named.insert(label_of(e)).second)
      throw_error(ErrorCode::usage, kRoom, "expert '" + label_of(e) + "' is given twice");
    auto stack = std::make_shared<const ExpertStack>(load_experts({e}, fingerprint));
    owned.push_back(make_single_expert_method(stack, 0, "Expert " + label_of(e), MethodKind::expert));
    experts_meta.push_back(expert_json(e, "expert"));
  }
  if (!options.multitask_dir.empty()) {
    ExpertInfo e = describe_expert(options.multitask_dir);
    auto stack = std::make_shared<const ExpertStack>(load_experts({e}, fingerprint));
    owned.push_back(make_single_expert_method(stack, 0, "Multitask", MethodKind::multitask));
    experts_meta.push_back(expert_json(e, "multitask"));
  }
  if (pool && (!options.routers.empty() || options.single_experts)) {
    auto stack = std::make_shared<const ExpertStack>(load_experts(pool->experts, fingerprint));
    for (const auto& e : pool->experts) experts_meta.push_back(expert_json(e, "pool"));
    std::set<std::string> seen;
    for (const auto& r : options.routers) {
      const std::string key(route::router_name(*route::parse_router(r)));
      if (!seen.insert(key).second) continue;
      owned.push_back(make_router_method(stack, key, options.top_k));
    }
    if (options.single_experts)
      for (std::size_t i = 0; i < stack->experts.size(); ++i)
        owned.push_back(
            make_single_expert_method(stack, i, kSingleMethodPrefix + label_of(stack->experts[i]), MethodKind::single));
  }
  if (owned.empty() || options.with_base) owned.insert(owned.begin(), make_base_method());

  // Rows are keyed by method name: a routed model named like an in-memory router (or like
  // another routed model) is told apart by its directory's name.
  std::map<std::string, int> uses;
  for (const auto& m : owned) ++uses[m->name()];
  for (auto& m : owned)
    for (std::size_t i = 0; i < options.model_dirs.size(); ++i)
      if (m.get() == model_methods[i] && uses[m->name()] > 1) {
        std::string dir_name = fs::absolute(options.model_dirs[i]).lexically_normal().filename().string();
        if (dir_name.empty()) dir_name = options.model_dirs[i].string();
        m->set_name(m->name() + " (" + dir_name + ")");
        models_meta[i]["method"] = m->name();
      }
  std::set<std::string> names;
  for (const auto& m : owned)
    if (!names.insert(m->name()).second)
      throw_error(ErrorCode::usage, kRoom, "two methods would both be named '" + m->name() + "'",
                  "give the routed models directories with different names");

  std::vector<Method*> methods;
  for (auto& m : owned) methods.push_back(m.get());
  Report report;
  evaluate(*model, tokenizer, task_list, methods, options.eval, report);
  derive_oracle_and_best(report);

  auto& meta = report.meta;
  meta["gaggle_version"] = options.gaggle_version;
  meta["base"] = {{"dir", options.base_dir.generic_string()}, {"fingerprint", fingerprint}};
  if (pool) {
    meta["pool"] = {{"dir", pool->dir.generic_string()},
                    {"hub", pool->hub.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(pool->hub)},
                    {"commit", pool->commit.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(pool->commit)}};
  } else {
    meta["pool"] = nullptr;
  }
  meta["experts"] = experts_meta;
  meta["models"] = models_meta;
  nlohmann::ordered_json task_paths = nlohmann::ordered_json::array();
  for (const auto& p : options.tasks) task_paths.push_back(p.generic_string());
  nlohmann::ordered_json tasks_meta = nlohmann::ordered_json::array();
  for (const auto& t : task_list)
    tasks_meta.push_back({{"benchmark", t.benchmark}, {"task", t.name}, {"scored", t.examples.size()}, {"available", t.available}});
  meta["tasks"] = tasks_meta;
  meta["flags"] = {{"tasks", task_paths},
                   {"routers", options.routers},
                   {"top_k", options.top_k},
                   {"single_experts", options.single_experts},
                   {"multitask", options.multitask_dir.generic_string()},
                   {"with_base", options.with_base},
                   {"limit", options.eval.limit},
                   {"batch_size", options.eval.batch_size},
                   {"max_input_tokens", options.eval.max_input_tokens},
                   {"max_new_tokens", options.eval.max_new_tokens},
                   {"device", options.device}};
  meta["seed"] = options.eval.seed;
  return report;
}

}  // namespace gaggle::eval
