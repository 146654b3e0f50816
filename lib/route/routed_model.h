#pragma once
// Loading a routed model (issue #7): the base T5 with an adapter on every assembled
// module — RoutedLinear for per-token routers, MergedLinear for merged / single — whose
// expert tensors stay memory-mapped from MODEL_DIR/modules/*.safetensors.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "route/assembly.h"

namespace gaggle::model {
class T5ModelImpl;
}

namespace gaggle::route {

class RoutedModel {
 public:
  // Checks the assembly's base fingerprint against `base_fingerprint` (Error{mismatch}
  // naming both) and every module's tensors against assembly.json and the model's
  // linear shapes (Error{invalid} naming file and tensor), then attaches the adapters.
  static RoutedModel attach(model::T5ModelImpl& model, const std::filesystem::path& model_dir,
                            const std::string& base_fingerprint);

  const Assembly& assembly() const { return assembly_; }

  // Routing trace (issue #7, item 6): per module, how many token slots chose each
  // expert. Counting starts when enabled; per-token routers only.
  void enable_trace();
  nlohmann::json trace_json() const;
  void write_trace(const std::filesystem::path& path) const;  // atomic

 private:
  Assembly assembly_;
  std::vector<std::pair<std::string, std::shared_ptr<class RoutedLinear>>> routed_;
  std::map<std::string, std::vector<std::int64_t>> counts_;
};

}  // namespace gaggle::route
