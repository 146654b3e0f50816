// A routed model made by `gaggle assemble`, as a method under evaluation (method.h).
#include <ATen/core/Tensor.h>

#include <optional>

#include <nlohmann/json.hpp>

#include "eval/method.h"
#include "io/error.h"
#include "model/base_model.h"
#include "route/routed_model.h"

namespace gaggle::eval {
namespace {

bool traced(route::RouterKind kind) {
  return kind == route::RouterKind::phatgoose || kind == route::RouterKind::arrow ||
         kind == route::RouterKind::average_activation || kind == route::RouterKind::retrieval;
}

std::string method_name(const route::Assembly& a) {
  if (a.router == route::RouterKind::single && a.experts.size() == 1)
    return "Expert " + a.experts[0].name + "@" + a.experts[0].version;
  return router_display_name(std::string(route::router_name(a.router)));
}

class RoutedModelMethod : public Method {
 public:
  RoutedModelMethod(std::filesystem::path dir, std::string fingerprint, const route::Assembly& assembly)
      : Method(method_name(assembly),
               assembly.router == route::RouterKind::single ? MethodKind::expert : MethodKind::router),
        dir_(std::move(dir)),
        fingerprint_(std::move(fingerprint)),
        traced_(traced(assembly.router)) {
    for (const auto& e : assembly.experts) trace_.experts.push_back(e.name + "@" + e.version);
  }

  void attach(model::BaseModel& model, int) override {
    // Attached once; again only when another method has replaced the adapters since.
    if (routed_ && attached_to_ == &model && (probe_.empty() || model.adapter(probe_) == probe_adapter_)) return;
    model.clear_adapters();
    try {
      routed_ = route::RoutedModel::attach(model, dir_, fingerprint_);
    } catch (const Error& e) {
      throw e.with_context("routed model '" + dir_.string() + "'");
    }
    attached_to_ = &model;
    const auto& modules = routed_->assembly().modules;
    probe_ = modules.empty() ? std::string() : modules.front().name;
    probe_adapter_ = probe_.empty() ? nullptr : model.adapter(probe_);
    if (traced_) routed_->enable_trace();
  }

  RoutingTrace* trace() override {
    if (!traced_) return nullptr;
    trace_.counts.clear();
    if (routed_) {
      const auto j = routed_->trace_json();
      for (auto it = j["modules"].begin(); it != j["modules"].end(); ++it)
        trace_.counts[it.key()] = it.value().get<std::vector<std::int64_t>>();
    }
    return &trace_;
  }

  void reset_trace() override {
    if (traced_ && routed_) routed_->enable_trace();  // counting starts again from zero
  }

 private:
  std::filesystem::path dir_;
  std::string fingerprint_;
  bool traced_;
  std::optional<route::RoutedModel> routed_;
  const model::BaseModel* attached_to_ = nullptr;
  std::string probe_;                                    // a module of the assembly
  std::shared_ptr<model::LinearAdapter> probe_adapter_;  // its adapter as attached
  RoutingTrace trace_;
};

}  // namespace

std::unique_ptr<Method> make_routed_model_method(const std::filesystem::path& model_dir,
                                                 const std::string& base_fingerprint) {
  route::Assembly assembly = route::read_assembly(model_dir);
  return std::make_unique<RoutedModelMethod>(model_dir, base_fingerprint, assembly);
}

}  // namespace gaggle::eval
