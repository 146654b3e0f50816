#include "model/hf_checkpoint.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/json_file.h"

namespace gaggle::model {

namespace fs = std::filesystem;

HfCheckpoint HfCheckpoint::open(const fs::path& base_dir) {
  HfCheckpoint ck;
  ck.dir_ = base_dir;
  std::error_code ec;
  const fs::path single = base_dir / "model.safetensors";
  const fs::path index = base_dir / "model.safetensors.index.json";
  if (fs::exists(single, ec)) {
    ck.source_ = single.string();
    ck.files_.push_back(std::make_unique<io::SafetensorsFile>(io::SafetensorsFile::open(single)));
    for (const auto& t : ck.files_.back()->tensors()) ck.tensors_[t.name] = Entry{&t, ck.files_.back().get()};
    return ck;
  }
  if (!fs::exists(index, ec)) {
    std::string hint = "a base model needs model.safetensors or model.safetensors.index.json beside config.json";
    if (fs::exists(base_dir / "pytorch_model.bin", ec) || fs::exists(base_dir / "pytorch_model.bin.index.json", ec))
      hint = "this checkpoint has only pytorch_model.bin; convert it to safetensors "
             "(transformers: model.save_pretrained(dir, safe_serialization=True))";
    throw_error(ErrorCode::not_found, "model", "'" + base_dir.string() + "' has no model.safetensors", hint);
  }
  ck.source_ = index.string();
  const auto j = io::read_json_file(index);
  auto wm = j.is_object() ? j.find("weight_map") : j.end();
  if (wm == j.end() || !wm->is_object())
    throw_error(ErrorCode::invalid, "model", index.string() + ": missing object 'weight_map'",
                "the index must map each tensor name to its shard file");
  std::map<std::string, std::string> wanted;  // tensor -> shard
  std::vector<std::string> shard_order;
  for (const auto& [name, file] : wm->items()) {
    if (!file.is_string())
      throw_error(ErrorCode::invalid, "model", index.string() + ": weight_map['" + name + "'] is not a file name");
    std::string shard = file.get<std::string>();
    fs::path rel(shard);
    if (shard.empty() || rel.is_absolute() || rel.filename() != rel || shard == "." || shard == "..")
      throw_error(ErrorCode::invalid, "model", index.string() + ": shard '" + shard + "' of tensor '" + name +
                                                   "' is not a plain file name in the checkpoint directory");
    wanted[name] = shard;
    if (std::find(shard_order.begin(), shard_order.end(), shard) == shard_order.end()) shard_order.push_back(shard);
  }
  std::sort(shard_order.begin(), shard_order.end());
  for (const auto& shard : shard_order) {
    ck.files_.push_back(std::make_unique<io::SafetensorsFile>(io::SafetensorsFile::open(base_dir / shard)));
    const io::SafetensorsFile* f = ck.files_.back().get();
    for (const auto& t : f->tensors()) {
      auto w = wanted.find(t.name);
      if (w == wanted.end())
        throw_error(ErrorCode::invalid, "model", (base_dir / shard).string() + ": tensor '" + t.name +
                                                     "' is not listed in " + index.filename().string());
      if (w->second != shard)
        throw_error(ErrorCode::invalid, "model", (base_dir / shard).string() + ": tensor '" + t.name + "' is listed in " +
                                                     index.filename().string() + " as being in '" + w->second + "'");
      ck.tensors_[t.name] = Entry{&t, f};
    }
  }
  for (const auto& [name, shard] : wanted)
    if (!ck.tensors_.count(name))
      throw_error(ErrorCode::invalid, "model", (base_dir / shard).string() + ": tensor '" + name + "' listed in " +
                                                   index.filename().string() + " is missing from the shard");
  return ck;
}

const HfCheckpoint::Entry* HfCheckpoint::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<fs::path> HfCheckpoint::files() const {
  std::vector<fs::path> out;
  for (const auto& f : files_) out.push_back(f->path());
  return out;
}

}  // namespace gaggle::model
