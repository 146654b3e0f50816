#include "eval/experts.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "bundle/manifest.h"
#include "eval/detail/room.h"
#include "hub/pool_trust.h"
#include "io/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "route/tensor_file.h"

namespace fs = std::filesystem;

namespace gaggle::eval {
namespace {

std::string json_string(const nlohmann::json& obj, const char* key, const std::string& source) {
  if (!obj.contains(key)) return {};
  if (!obj[key].is_string()) throw_error(ErrorCode::invalid, kRoom, source + ": field '" + key + "' is not a string");
  return obj[key].get<std::string>();
}

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string label_of(const ExpertInfo& e) { return e.version.empty() ? e.name : e.name + "@" + e.version; }

ExpertInfo describe_expert(const fs::path& dir) {
  if (!fs::is_regular_file(dir / kAdapterFile))
    throw_error(ErrorCode::not_found, kRoom, "expert '" + dir.string() + "': no " + kAdapterFile,
                "an expert directory is what train-expert writes (or a pool's bundles/<name>/<version>)");
  ExpertInfo info;
  info.dir = dir;
  if (fs::exists(dir / bundle::kManifestFile)) {
    auto m = bundle::read_manifest(dir);
    info.name = m.name;
    info.version = m.version;
    info.base_fingerprint = m.base_fingerprint;
    info.scaling = bundle::lora_scaling(m.body, (dir / bundle::kManifestFile).string());
  } else {
    info.name = fs::absolute(dir).lexically_normal().filename().string();
    if (info.name.empty()) info.name = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  }
  return info;
}

PoolInfo read_pool_dir(const fs::path& dir, const fs::path& trust_file) {
  if (!fs::is_directory(dir))
    throw_error(ErrorCode::not_found, kRoom, "pool '" + dir.string() + "' is not a directory",
                "make one with 'gaggle pull', or pass a directory of expert directories");
  PoolInfo pool;
  pool.dir = dir;
  const fs::path pool_json = dir / "pool.json";
  if (fs::exists(pool_json)) {
    std::map<fs::path, hub::VerifiedBundle> verified;
    for (auto& v : hub::verify_pool(dir, trust_file)) verified[fs::weakly_canonical(v.dir)] = v;
    const std::string source = pool_json.string();
    auto j = io::read_json_file(pool_json);
    if (!j.is_object()) throw_error(ErrorCode::invalid, kRoom, source + ": not a JSON object");
    pool.hub = json_string(j, "hub", source);
    pool.commit = json_string(j, "commit", source);
    if (!j.contains("bundles") || !j["bundles"].is_array())
      throw_error(ErrorCode::invalid, kRoom, source + ": field 'bundles' is missing or not an array");
    for (std::size_t i = 0; i < j["bundles"].size(); ++i) {
      const auto& b = j["bundles"][i];
      const std::string where = source + ": bundles/" + std::to_string(i);
      if (!b.is_object()) throw_error(ErrorCode::invalid, kRoom, where + ": not an object");
      std::string rel = json_string(b, "path", where);
      if (rel.empty()) rel = "bundles/" + json_string(b, "name", where) + "/" + json_string(b, "version", where);
      if (fs::path(rel).is_absolute() || rel.find("..") != std::string::npos)
        throw_error(ErrorCode::invalid, kRoom, where + ": field 'path' must stay inside the pool");
      ExpertInfo e = describe_expert(dir / rel);
      auto v = verified.find(fs::weakly_canonical(dir / rel));
      if (v == verified.end())
        throw_error(ErrorCode::invalid, kRoom, where + ": '" + rel + "' is not a bundle pool.json lists");
      e.signer = v->second.principal;
      e.key_fingerprint = v->second.key_fingerprint;
      pool.experts.push_back(std::move(e));
    }
  } else {
    std::vector<fs::path> dirs;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      if (entry.is_regular_file() && entry.path().filename() == kAdapterFile) dirs.push_back(entry.path().parent_path());
    }
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs) pool.experts.push_back(describe_expert(d));
  }
  std::sort(pool.experts.begin(), pool.experts.end(), [](const ExpertInfo& a, const ExpertInfo& b) {
    return std::tie(a.name, a.version, a.dir) < std::tie(b.name, b.version, b.dir);
  });
  if (pool.experts.empty())
    throw_error(ErrorCode::not_found, kRoom, "pool '" + dir.string() + "' holds no experts",
                "pull some with 'gaggle pull', or point --pool at a directory of expert directories");
  return pool;
}

ExpertStack load_experts(const std::vector<ExpertInfo>& experts, const std::string& base_fingerprint) {
  if (experts.empty()) throw_error(ErrorCode::invalid, kRoom, "no experts to load");
  ExpertStack stack;
  stack.experts = experts;
  std::set<std::string> seen;
  for (const auto& e : experts)
    if (!seen.insert(label_of(e)).second)
      throw_error(ErrorCode::invalid, kRoom, "expert '" + label_of(e) + "' is listed twice");

  std::vector<std::shared_ptr<const io::SafetensorsFile>> files;
  std::vector<std::set<std::string>> names(experts.size());
  for (std::size_t i = 0; i < experts.size(); ++i) {
    const auto& e = experts[i];
    if (!base_fingerprint.empty() && !e.base_fingerprint.empty() && e.base_fingerprint != base_fingerprint)
      throw_error(ErrorCode::mismatch, kRoom,
                  "expert '" + label_of(e) + "' was trained on base " + e.base_fingerprint + ", not on this base (" +
                      base_fingerprint + ")",
                  "evaluate it with the base it was trained on, or leave it out of the pool");
    files.push_back(std::make_shared<const io::SafetensorsFile>(io::SafetensorsFile::open(e.dir / kAdapterFile)));
    for (const auto& t : files.back()->tensors()) names[i].insert(t.name);
  }

  // Modules: the "<module>.lora_A" names of the first expert; every other must match.
  for (const auto& n : names[0])
    if (has_suffix(n, ".lora_A")) stack.modules.push_back(n.substr(0, n.size() - 7));
  if (stack.modules.empty())
    throw_error(ErrorCode::invalid, kRoom, (experts[0].dir / kAdapterFile).string() + ": no '<module>.lora_A' tensors");
  for (std::size_t i = 0; i < experts.size(); ++i) {
    std::size_t count = 0;
    for (const auto& n : names[i]) count += has_suffix(n, ".lora_A");
    for (const auto& m : stack.modules)
      if (!names[i].count(m + ".lora_A") || !names[i].count(m + ".lora_B"))
        throw_error(ErrorCode::mismatch, kRoom,
                    "expert '" + label_of(experts[i]) + "' has no LoRA for module '" + m + "' that expert '" +
                        label_of(experts[0]) + "' has",
                    "experts routed together must adapt the same modules");
    if (count != stack.modules.size())
      throw_error(ErrorCode::mismatch, kRoom,
                  "expert '" + label_of(experts[i]) + "' adapts " + std::to_string(count) + " modules, expert '" +
                      label_of(experts[0]) + "' " + std::to_string(stack.modules.size()),
                  "experts routed together must adapt the same modules");
  }

  auto stack_tensors = [&](const std::string& suffix, std::string* missing) -> std::map<std::string, at::Tensor> {
    std::map<std::string, at::Tensor> out;
    for (std::size_t i = 0; i < experts.size(); ++i)
      for (const auto& m : stack.modules)
        if (!names[i].count(m + suffix)) {
          if (missing) {
            *missing = "expert '" + label_of(experts[i]) + "' has no '" + m + suffix + "'";
            return {};
          }
        }
    for (const auto& m : stack.modules) {
      std::vector<at::Tensor> parts;
      for (std::size_t i = 0; i < experts.size(); ++i) {
        at::Tensor t = route::read_tensor(files[i], m + suffix);
        if (!parts.empty() && t.sizes() != parts[0].sizes())
          throw_error(ErrorCode::invalid, kRoom,
                      files[i]->path().string() + ": tensor '" + m + suffix + "' has shape " +
                          io::shape_to_string(t.sizes().vec()) + ", expected " +
                          io::shape_to_string(parts[0].sizes().vec()) + " (as in expert '" + label_of(experts[0]) +
                          "')");
        if (suffix == ".lora_B") {
          const double r = static_cast<double>(t.size(-1));
          const double factor = experts[i].scaling.scale(m, t.size(-1)) * r;
          if (factor != 1.0) t = t * factor;
        }
        parts.push_back(t);
      }
      out[m] = at::stack(parts).contiguous();
    }
    return out;
  };
  stack.A = stack_tensors(".lora_A", nullptr);
  stack.B = stack_tensors(".lora_B", nullptr);
  for (const auto& m : stack.modules) {
    const auto& a = stack.A[m];
    const auto& b = stack.B[m];
    if (a.dim() != 3 || b.dim() != 3 || a.size(1) != b.size(2))
      throw_error(ErrorCode::invalid, kRoom,
                  "module '" + m + "': lora_A " + io::shape_to_string(a.sizes().vec()) + " and lora_B " +
                      io::shape_to_string(b.sizes().vec()) + " do not form a LoRA pair ([r, d_in], [d_out, r])");
    if (stack.rank == 0) stack.rank = a.size(1);
  }
  stack.gates = stack_tensors(".gate", &stack.missing_gate);
  stack.avg_act = stack_tensors(".avg_act", &stack.missing_avg_act);
  for (std::size_t i = 0; i < experts.size(); ++i) {
    if (!names[i].count(kRetrievalEmbeddingsTensor)) {
      stack.missing_retrieval = "expert '" + label_of(experts[i]) + "' has no '" + kRetrievalEmbeddingsTensor + "'";
      stack.retrieval.clear();
      break;
    }
    at::Tensor emb = route::read_tensor(files[i], kRetrievalEmbeddingsTensor);
    if (emb.dim() != 2 || emb.size(0) == 0)
      throw_error(ErrorCode::invalid, kRoom,
                  files[i]->path().string() + ": tensor '" + kRetrievalEmbeddingsTensor + "' has shape " +
                      io::shape_to_string(emb.sizes().vec()) + ", expected [n, d_model] with n > 0");
    stack.retrieval.push_back(emb);
  }
  return stack;
}

}  // namespace gaggle::eval
