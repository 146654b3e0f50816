#include "eval/method.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>

#include "io/error.h"
#include "model/scoring.h"
#include "model/base_model.h"
#include "route/arrow.h"
#include "route/average_activation.h"
#include "route/merged.h"
#include "route/phatgoose.h"
#include "route/retrieval.h"
#include "route/routed_linear.h"
#include "route/router.h"
#include "route/smear.h"
#include "eval/detail/room.h"

namespace gaggle::eval {
namespace {

std::string expert_label(const ExpertInfo& e) { return e.version.empty() ? e.name : e.name + "@" + e.version; }

void attach_all(model::BaseModel& model, const std::map<std::string, std::shared_ptr<model::LinearAdapter>>& adapters) {
  model.clear_adapters();
  for (const auto& [module, adapter] : adapters) {
    try {
      model.set_adapter(module, adapter);
    } catch (const Error& e) {
      throw e.with_context("the experts adapt module '" + module + "', which this base does not have");
    }
  }
}

class BaseMethod : public Method {
 public:
  BaseMethod() : Method("Base", MethodKind::base) {}
  void attach(model::BaseModel& model, int) override { model.clear_adapters(); }
};

// One expert (index) of a stack as a MergedLinear with N = 1 on every module.
class SingleExpertMethod : public Method {
 public:
  SingleExpertMethod(std::shared_ptr<const ExpertStack> stack, std::size_t index, std::string name, MethodKind kind)
      : Method(std::move(name), kind), stack_(std::move(stack)), index_(index) {}

  void attach(model::BaseModel& model, int) override {
    if (adapters_.empty()) {
      const auto device = model.device();
      const auto i = static_cast<std::int64_t>(index_);
      for (const auto& m : stack_->modules) {
        auto A = stack_->A.at(m).narrow(0, i, 1).to(device);
        auto B = stack_->B.at(m).narrow(0, i, 1).to(device);
        adapters_[m] = std::make_shared<route::MergedLinear>(A, B);
      }
    }
    attach_all(model, adapters_);
  }

 private:
  std::shared_ptr<const ExpertStack> stack_;
  std::size_t index_;
  std::map<std::string, std::shared_ptr<model::LinearAdapter>> adapters_;
};

class MergedMethod : public Method {
 public:
  MergedMethod(std::shared_ptr<const ExpertStack> stack, const std::string& key, route::MergeForm form)
      : Method(router_display_name(key), MethodKind::router), stack_(std::move(stack)), form_(form) {}

  void attach(model::BaseModel& model, int) override {
    if (adapters_.empty()) {
      const auto device = model.device();
      for (const auto& m : stack_->modules)
        adapters_[m] =
            std::make_shared<route::MergedLinear>(stack_->A.at(m).to(device), stack_->B.at(m).to(device), 0, form_);
    }
    attach_all(model, adapters_);
  }

 private:
  std::shared_ptr<const ExpertStack> stack_;
  route::MergeForm form_;
  std::map<std::string, std::shared_ptr<model::LinearAdapter>> adapters_;
};

// PHATGOOSE, Arrow, average activation: a RoutedLinear per module, traced.
class TokenRoutedMethod : public Method {
 public:
  TokenRoutedMethod(std::shared_ptr<const ExpertStack> stack, std::string key, int top_k)
      : Method(router_display_name(key), MethodKind::router), stack_(std::move(stack)), key_(std::move(key)) {
    const auto n = static_cast<std::int64_t>(stack_->experts.size());
    options_.top_k = static_cast<int>(std::clamp<std::int64_t>(top_k, 1, n));
    if (key_ == "arrow") options_.score = route::ScoreKind::abs_dot;
    for (const auto& e : stack_->experts) trace_.experts.push_back(expert_label(e));
    for (const auto& m : stack_->modules) trace_.counts[m].assign(static_cast<std::size_t>(n), 0);
    // Keys are computed once, here (never per call).
    for (const auto& m : stack_->modules) {
      if (key_ == "phatgoose") keys_[m] = route::phatgoose_keys(stack_->gates.at(m));
      else if (key_ == "average-activation") keys_[m] = route::average_activation_keys(stack_->avg_act.at(m));
      else keys_[m] = route::arrow_keys(stack_->A.at(m), stack_->B.at(m));
    }
  }

  void attach(model::BaseModel& model, int) override {
    if (adapters_.empty()) {
      const auto device = model.device();
      for (const auto& m : stack_->modules) {
        auto layer = std::make_shared<route::RoutedLinear>(stack_->A.at(m).to(device), stack_->B.at(m).to(device),
                                                           keys_.at(m).to(device), options_);
        layer->set_trace(&trace_.counts.at(m));
        adapters_[m] = layer;
      }
    }
    attach_all(model, adapters_);
  }

  RoutingTrace* trace() override { return &trace_; }

 private:
  std::shared_ptr<const ExpertStack> stack_;
  std::string key_;
  route::RoutedLinearOptions options_;
  std::map<std::string, at::Tensor> keys_;
  RoutingTrace trace_;
  std::map<std::string, std::shared_ptr<model::LinearAdapter>> adapters_;
};

// Retrieval: one expert per example, the argmax over experts of the largest cosine
// similarity between the example's embedding (the base model's prompt embedding, no
// adapters: BaseModel::prompt_embeddings) and the expert's stored training-input embeddings
// (route/retrieval.h, shared with assembled retrieval models).
class RetrievalMethod : public Method {
 public:
  explicit RetrievalMethod(std::shared_ptr<const ExpertStack> stack)
      : Method(router_display_name("retrieval"), MethodKind::router), stack_(std::move(stack)) {
    std::vector<std::string> labels;
    for (const auto& e : stack_->experts) labels.push_back("expert '" + expert_label(e) + "'");
    index_ = route::make_retrieval_index(stack_->retrieval, labels);
  }

  std::vector<int> assign(model::BaseModel& model, const std::vector<std::vector<std::int64_t>>& inputs) override {
    c10::InferenceMode guard;
    model.clear_adapters();
    auto choice = route::retrieve_experts(index_, model.prompt_embeddings(inputs)).to(at::kCPU);
    std::vector<int> groups(inputs.size());
    for (std::size_t b = 0; b < inputs.size(); ++b)
      groups[b] = static_cast<int>(choice[static_cast<std::int64_t>(b)].item<std::int64_t>());
    return groups;
  }

  void attach(model::BaseModel& model, int group) override {
    auto& expert = experts_[group];
    if (!expert)
      expert = std::make_unique<SingleExpertMethod>(stack_, static_cast<std::size_t>(group), "", MethodKind::single);
    expert->attach(model, group);
  }

 private:
  std::shared_ptr<const ExpertStack> stack_;
  route::RetrievalIndex index_;
  std::map<int, std::unique_ptr<SingleExpertMethod>> experts_;
};

// SMEAR-style soft merge (route/smear.h): per example and module, the experts merged by
// the mean PHATGOOSE routing distribution over the example's real tokens.
class SmearMethod : public Method {
 public:
  explicit SmearMethod(std::shared_ptr<const ExpertStack> stack)
      : Method(router_display_name("smear"), MethodKind::router), stack_(std::move(stack)) {
    for (const auto& m : stack_->modules) keys_[m] = route::phatgoose_keys(stack_->gates.at(m));
  }

  void attach(model::BaseModel& model, int) override {
    if (adapters_.empty()) {
      const auto device = model.device();
      for (const auto& m : stack_->modules)
        adapters_[m] = std::make_shared<route::SmearLinear>(stack_->A.at(m).to(device), stack_->B.at(m).to(device),
                                                            keys_.at(m).to(device));
    }
    attach_all(model, adapters_);
  }

 private:
  std::shared_ptr<const ExpertStack> stack_;
  std::map<std::string, at::Tensor> keys_;
  std::map<std::string, std::shared_ptr<model::LinearAdapter>> adapters_;
};

}  // namespace

void RoutingTrace::reset() {
  for (auto& [m, c] : counts) std::fill(c.begin(), c.end(), 0);
}

std::int64_t RoutingTrace::total() const {
  std::int64_t t = 0;
  for (const auto& [m, c] : counts)
    for (auto v : c) t += v;
  return t;
}

void Method::reset_trace() {
  if (RoutingTrace* t = trace()) t->reset();
}

std::vector<int> Method::assign(model::BaseModel&, const std::vector<std::vector<std::int64_t>>& inputs) {
  return std::vector<int>(inputs.size(), 0);
}

std::string router_display_name(const std::string& key) {
  if (key == "phatgoose") return "PHATGOOSE";
  if (key == "arrow") return "Arrow";
  if (key == "average-activation") return "Average activation";
  if (key == "retrieval") return "Retrieval";
  if (key == "merged") return "Merged";
  if (key == "merged-factors") return "Merged (averaged A, B)";
  if (key == "smear") return "SMEAR";
  return key;
}

std::unique_ptr<Method> make_base_method() { return std::make_unique<BaseMethod>(); }

std::unique_ptr<Method> make_single_expert_method(std::shared_ptr<const ExpertStack> stack, std::size_t index,
                                                  std::string name, MethodKind kind) {
  if (!stack || index >= stack->experts.size()) throw_error(ErrorCode::invalid, kRoom, "single expert: index out of range");
  return std::make_unique<SingleExpertMethod>(std::move(stack), index, std::move(name), kind);
}

std::unique_ptr<Method> make_router_method(std::shared_ptr<const ExpertStack> stack, const std::string& key, int top_k) {
  if (!stack) throw_error(ErrorCode::invalid, kRoom, "router '" + key + "': no experts");
  const std::string hint_gate = "run 'gaggle train-gate' on every expert of the pool (it adds gates, average "
                                "activations and retrieval embeddings)";
  if (key == "phatgoose") {
    if (stack->gates.empty())
      throw_error(ErrorCode::invalid, kRoom, "router 'phatgoose': " + stack->missing_gate, hint_gate);
    return std::make_unique<TokenRoutedMethod>(std::move(stack), key, top_k);
  }
  if (key == "average-activation") {
    if (stack->avg_act.empty())
      throw_error(ErrorCode::invalid, kRoom, "router 'average-activation': " + stack->missing_avg_act, hint_gate);
    return std::make_unique<TokenRoutedMethod>(std::move(stack), key, top_k);
  }
  if (key == "arrow") return std::make_unique<TokenRoutedMethod>(std::move(stack), key, top_k);
  if (key == "merged") return std::make_unique<MergedMethod>(std::move(stack), key, route::MergeForm::products);
  if (key == "merged-factors")
    return std::make_unique<MergedMethod>(std::move(stack), key, route::MergeForm::factors);
  if (key == "retrieval") {
    if (stack->retrieval.empty())
      throw_error(ErrorCode::invalid, kRoom, "router 'retrieval': " + stack->missing_retrieval, hint_gate);
    return std::make_unique<RetrievalMethod>(std::move(stack));
  }
  if (key == "smear") {
    if (stack->gates.empty()) throw_error(ErrorCode::invalid, kRoom, "router 'smear': " + stack->missing_gate, hint_gate);
    return std::make_unique<SmearMethod>(std::move(stack));
  }
  throw_error(ErrorCode::usage, kRoom, "router '" + key + "' cannot be evaluated",
              "use " + route::router_names(/*include_single=*/false));
}

}  // namespace gaggle::eval
