#include "model/base_model.h"

#include "model/llama.h"
#include "model/t5.h"

namespace gaggle::model {

std::shared_ptr<BaseModel> load_base(const std::filesystem::path& base_dir, const LoadOptions& options) {
  switch (read_architecture(base_dir)) {
    case Architecture::t5: return load_t5(base_dir, options).ptr();
    case Architecture::llama: return load_llama(base_dir, options).ptr();
  }
  return nullptr;
}

}  // namespace gaggle::model
