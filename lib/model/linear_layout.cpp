#include "model/linear_layout.h"

#include "io/error.h"
#include "model/llama_config.h"
#include "model/t5_config.h"

namespace gaggle::model {

std::vector<std::int64_t> LinearLayout::shape(const std::string& linear_name) const {
  auto it = shapes.find(linear_name);
  if (it == shapes.end())
    throw_error(ErrorCode::not_found, "model", "no linear layer '" + linear_name + "' in this " +
                                                   architecture_name(architecture) + " base",
                "'gaggle inspect BASE_DIR' lists them");
  return it->second;
}

LinearLayout read_linear_layout(const std::filesystem::path& base_dir) {
  LinearLayout l;
  l.architecture = read_architecture(base_dir);
  switch (l.architecture) {
    case Architecture::t5: {
      const T5Config c = read_t5_config(base_dir);
      l.d_model = c.d_model;
      l.names = t5_linear_names(c);
      for (const auto& n : l.names) l.shapes[n] = t5_linear_shape(c, n);
      break;
    }
    case Architecture::llama: {
      const LlamaConfig c = read_llama_config(base_dir);
      l.d_model = c.hidden_size;
      l.names = llama_linear_names(c);
      for (const auto& n : l.names) l.shapes[n] = llama_linear_shape(c, n);
      break;
    }
  }
  return l;
}

}  // namespace gaggle::model
