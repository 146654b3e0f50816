#pragma once
// A method under evaluation (a row of the paper's table): what gets attached to the base
// model's linear layers before an example is scored. The base model is loaded once and
// shared; each method attaches its adapters (model::LinearAdapter) in turn.
//
// Most methods use one configuration for every example. Retrieval picks an expert per
// example: assign() maps each example of a batch to a group, and the evaluator scores
// each group after attach(group).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "eval/experts.h"

namespace gaggle::model {
class BaseModel;
}

namespace gaggle::eval {

// What a method is, for the report.
enum class MethodKind {
  base,        // the base model alone
  expert,      // one named expert (--expert)
  single,      // one pool expert alone (--single-experts; feeds Oracle and Best individual)
  multitask,   // one LoRA trained on all held-in data (a ceiling, not post-hoc)
  router,      // a routing method over the pool (zero-shot)
  derived,     // Oracle, Best individual: computed from the single-expert rows
};

// Token slots routed to each expert, per routed module, summed since the last reset.
struct RoutingTrace {
  std::vector<std::string> experts;                     // N names
  std::map<std::string, std::vector<std::int64_t>> counts;  // module -> N counts
  void reset();
  std::int64_t total() const;
};

class Method {
 public:
  Method(std::string name, MethodKind kind) : name_(std::move(name)), kind_(kind) {}
  virtual ~Method() = default;

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }  // to tell two alike methods apart
  MethodKind kind() const { return kind_; }
  // Base, routers: zero-shot. Single experts, Oracle, Best individual, Multitask: not.
  bool zero_shot() const { return kind_ == MethodKind::base || kind_ == MethodKind::router; }

  // The group of each example of a batch (inputs are token ids with EOS); default all 0.
  virtual std::vector<int> assign(model::BaseModel& model, const std::vector<std::vector<std::int64_t>>& inputs);
  // Attaches this method's adapters for `group` to the model (replacing any others).
  virtual void attach(model::BaseModel& model, int group) = 0;
  // The routing trace when the method routes tokens (nullptr otherwise): the counts since
  // the last reset_trace() (the evaluator resets it before each task).
  virtual RoutingTrace* trace() { return nullptr; }
  virtual void reset_trace();

 private:
  std::string name_;
  MethodKind kind_;
};

// The paper's names of the routers ("PHATGOOSE", "Arrow", "Average activation",
// "Retrieval", "Merged", "SMEAR").
std::string router_display_name(const std::string& router_key);

// The base model with no adapters ("Base").
std::unique_ptr<Method> make_base_method();
// Expert `index` of the stack alone on every token. kind: expert, single or multitask.
std::unique_ptr<Method> make_single_expert_method(std::shared_ptr<const ExpertStack> stack, std::size_t index,
                                                  std::string name, MethodKind kind);
// A router over the whole stack: "phatgoose", "arrow", "average-activation" (per token,
// top_k), "merged" (mean update on every token), "retrieval" (one expert per example by
// embedding similarity), "smear" (per example, experts merged by the mean routing
// distribution; route/smear.h). Throws Error{invalid} (with a hint) when the experts lack what
// the router needs (gates, average activations, retrieval embeddings), Error{usage} for
// an unknown or unsupported router.
std::unique_ptr<Method> make_router_method(std::shared_ptr<const ExpertStack> stack, const std::string& router_key,
                                           int top_k);

// A routed model directory made by `gaggle assemble` (route/routed_model.h), attached to
// the base as assembled. Named after its router ("PHATGOOSE", ...; a single-expert
// assembly: "Expert name@version"). Per-token routers and retrieval are traced. Throws what
// route::read_assembly throws; attaching throws Error{mismatch} for another base.
std::unique_ptr<Method> make_routed_model_method(const std::filesystem::path& model_dir,
                                                 const std::string& base_fingerprint);

}  // namespace gaggle::eval
