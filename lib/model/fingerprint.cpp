#include "model/fingerprint.h"

#include <sys/stat.h>

#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/json_file.h"
#include "io/sha256.h"
#include "model/hf_checkpoint.h"

namespace gaggle::model {

namespace fs = std::filesystem;

namespace {

// The weight files a checkpoint consists of, without opening them (for the cache key).
std::vector<fs::path> weight_files(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / "model.safetensors", ec)) return {dir / "model.safetensors"};
  std::vector<fs::path> files;
  const fs::path index = dir / "model.safetensors.index.json";
  if (!fs::exists(index, ec)) return files;
  files.push_back(index);
  try {
    auto j = io::read_json_file(index);
    std::vector<std::string> shards;
    for (const auto& [name, file] : j.at("weight_map").items())
      if (file.is_string() && std::find(shards.begin(), shards.end(), file.get<std::string>()) == shards.end())
        shards.push_back(file.get<std::string>());
    std::sort(shards.begin(), shards.end());
    for (const auto& s : shards) files.push_back(dir / s);
  } catch (const std::exception&) {
    return {};  // HfCheckpoint::open reports the problem
  }
  return files;
}

nlohmann::json cache_key(const std::vector<fs::path>& files) {
  nlohmann::json key = nlohmann::json::array();
  for (const auto& f : files) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) return nullptr;
    key.push_back({{"file", f.filename().string()},
                   {"size", static_cast<std::int64_t>(st.st_size)},
                   {"mtime_ns", static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec}});
  }
  return key;
}

std::string compute(const fs::path& dir) {
  auto ck = HfCheckpoint::open(dir);
  io::Sha256 h;
  h.update(std::string_view("gaggle-base-fingerprint-v1\n"));
  for (const auto& [name, entry] : ck.tensors()) {  // std::map: sorted by name
    const auto& t = *entry.info;
    h.update(name + "\n" + std::string(io::dtype_name(t.dtype)) + "\n" + io::shape_to_string(t.shape) + "\n" +
             std::to_string(t.nbytes()) + "\n");
    h.update(ck.data(entry));
  }
  return "sha256:" + h.finish_hex();
}

}  // namespace

std::string base_fingerprint(const fs::path& base_dir, const FingerprintOptions& options) {
  const fs::path cache = base_dir / kFingerprintCacheName;
  nlohmann::json key = options.use_cache ? cache_key(weight_files(base_dir)) : nlohmann::json();
  if (!key.is_null() && !key.empty()) {
    try {
      std::error_code ec;
      if (fs::exists(cache, ec)) {
        auto j = io::read_json_file(cache);
        if (j.value("format_version", 0) == 1 && j.value("files", nlohmann::json()) == key && j.contains("fingerprint") &&
            j["fingerprint"].is_string()) {
          std::string fp = j["fingerprint"].get<std::string>();
          if (fp.size() == 7 + 64 && fp.rfind("sha256:", 0) == 0) return fp;
        }
      }
    } catch (const std::exception&) {
      // A damaged cache is recomputed and rewritten.
    }
  }
  std::string fp = compute(base_dir);
  if (!key.is_null() && !key.empty()) {
    try {
      io::write_json_file_atomic(cache, {{"format_version", 1}, {"fingerprint", fp}, {"files", key}});
    } catch (const Error&) {
      // Read-only checkpoint directory: no cache, same answer.
    }
  }
  return fp;
}

}  // namespace gaggle::model
