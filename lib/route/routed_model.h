#pragma once
// Loading a routed model (issue #7): the base (T5 or Llama, model/base_model.h) with an adapter on every assembled
// module — RoutedLinear for per-token routers, MergedLinear for merged / single,
// RetrievalLinear (one RetrievalChoice shared by all modules) for retrieval, SmearLinear
// for smear — whose expert tensors stay memory-mapped from MODEL_DIR/modules/*.safetensors.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "route/assembly.h"

namespace gaggle::model {
class BaseModel;
}

namespace gaggle::route {

class RetrievalChoice;

class RoutedModel {
 public:
  // Checks the assembly's base fingerprint against `base_fingerprint` (Error{mismatch}
  // naming both) and every module's tensors against assembly.json and the model's
  // linear shapes (Error{invalid} naming file and tensor), then attaches the adapters.
  static RoutedModel attach(model::BaseModel& model, const std::filesystem::path& model_dir,
                            const std::string& base_fingerprint);

  const Assembly& assembly() const { return assembly_; }

  // Routing trace (issue #7, item 6): per module, how many token slots chose each
  // expert (real tokens only, not padding). Counting starts when enabled; per-token
  // routers (k slots per token) and retrieval (one per token) only.
  bool traced() const { return !traced_.empty(); }
  void enable_trace();
  nlohmann::json trace_json() const;
  void write_trace(const std::filesystem::path& path) const;  // atomic

  // Retrieval: the expert chosen for each row of the current batch (the last encode, or
  // its rows as the last decode saw them). Error{invalid} for another router or before
  // any encode.
  std::vector<std::int64_t> retrieval_choice() const;

 private:
  Assembly assembly_;
  // Per traced module, how to point its adapter at a count vector.
  std::vector<std::pair<std::string, std::function<void(std::vector<std::int64_t>*)>>> traced_;
  std::map<std::string, std::vector<std::int64_t>> counts_;
  std::shared_ptr<RetrievalChoice> choice_;  // retrieval only
};

}  // namespace gaggle::route
