#include "bundle/lora_scaling.h"

#include <cmath>

#include "bundle/detail/room.h"
#include "io/error.h"

namespace gaggle::bundle {
namespace {

double positive_alpha(const nlohmann::json& value, const std::string& where) {
  if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() <= 0)
    throw_error(ErrorCode::invalid, kRoom, where + " must be a positive number, not " + value.dump());
  return value.get<double>();
}

}  // namespace

double LoraScaling::alpha_of(const std::string& module) const {
  auto it = alpha_by_module.find(module);
  return it == alpha_by_module.end() ? alpha : it->second;
}

double LoraScaling::scale(const std::string& module, std::int64_t rank) const {
  const double r = static_cast<double>(rank);
  return alpha_of(module) / (use_rslora ? std::sqrt(r) : r);
}

void LoraScaling::write_to(nlohmann::json& body) const {
  body["hyperparameters"]["lora_alpha"] = alpha;
  if (!use_rslora && alpha_by_module.empty()) {
    body.erase("lora");
    return;
  }
  nlohmann::json lora = {{"use_rslora", use_rslora}, {"alpha_by_module", nlohmann::json::object()}};
  for (const auto& [module, a] : alpha_by_module) lora["alpha_by_module"][module] = a;
  body["lora"] = lora;
}

LoraScaling lora_scaling(const nlohmann::json& body, const std::string& source) {
  LoraScaling s;
  if (auto h = body.find("hyperparameters"); h != body.end() && h->is_object())
    if (auto a = h->find("lora_alpha"); a != h->end())
      s.alpha = positive_alpha(*a, source + ": hyperparameters.lora_alpha");
  auto lora = body.find("lora");
  if (lora == body.end()) return s;
  if (!lora->is_object()) throw_error(ErrorCode::invalid, kRoom, source + ": field 'lora' is not an object");
  if (auto r = lora->find("use_rslora"); r != lora->end()) {
    if (!r->is_boolean()) throw_error(ErrorCode::invalid, kRoom, source + ": lora.use_rslora is not true or false");
    s.use_rslora = r->get<bool>();
  }
  if (auto m = lora->find("alpha_by_module"); m != lora->end()) {
    if (!m->is_object()) throw_error(ErrorCode::invalid, kRoom, source + ": lora.alpha_by_module is not an object");
    for (const auto& [module, a] : m->items())
      s.alpha_by_module[module] = positive_alpha(a, source + ": lora.alpha_by_module['" + module + "']");
  }
  return s;
}

}  // namespace gaggle::bundle
