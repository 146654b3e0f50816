#pragma once
// A Hugging Face checkpoint directory's weights, torch-free: model.safetensors, or the
// shards listed by model.safetensors.index.json ("weight_map": tensor -> file). Each
// file is memory-mapped and validated (io/safetensors.h).
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace gaggle::model {

class HfCheckpoint {
 public:
  // Throws Error{not_found} if neither file exists (a pytorch_model.bin-only directory
  // gets a hint to convert), Error{invalid} for a malformed index (a tensor listed in a
  // shard that lacks it, a tensor in two shards, a shard path escaping the directory).
  static HfCheckpoint open(const std::filesystem::path& base_dir);

  struct Entry {
    const io::TensorInfo* info;        // owned by the shard's SafetensorsFile
    const io::SafetensorsFile* file;
  };
  // Every tensor of every shard, by name.
  const std::map<std::string, Entry>& tensors() const { return tensors_; }
  const Entry* find(const std::string& name) const;
  std::span<const std::byte> data(const Entry& entry) const { return entry.file->data(*entry.info); }

  // The weight files (one, or the shards in index order), paths absolute as opened.
  std::vector<std::filesystem::path> files() const;
  const std::filesystem::path& dir() const { return dir_; }
  // "the weights of <dir>" style label for messages: the file name, or the index name.
  const std::string& source() const { return source_; }

 private:
  std::filesystem::path dir_;
  std::string source_;
  std::vector<std::unique_ptr<io::SafetensorsFile>> files_;
  std::map<std::string, Entry> tensors_;
};

}  // namespace gaggle::model
