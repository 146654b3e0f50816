#pragma once
// The linear layers of a base and their shapes, from config.json alone (torch-free), for
// whatever architecture it is (architecture.h): what assembly checks experts against.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "model/architecture.h"

namespace gaggle::model {

struct LinearLayout {
  Architecture architecture = Architecture::t5;
  std::int64_t d_model = 0;        // the hidden width (retrieval embeddings)
  std::vector<std::string> names;  // HF module paths, lm_head excluded
  std::map<std::string, std::vector<std::int64_t>> shapes;  // [d_out, d_in] by name
  // [d_out, d_in] of a linear; Error{not_found} for a name the base lacks.
  std::vector<std::int64_t> shape(const std::string& linear_name) const;
};

// Throws what read_architecture and the config readers throw.
LinearLayout read_linear_layout(const std::filesystem::path& base_dir);

}  // namespace gaggle::model
