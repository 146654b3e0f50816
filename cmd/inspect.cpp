// gaggle inspect — describe what a path holds (dispatch on what the path is): safetensors
// files, expert bundles (their manifest, read without verifying: that is `gaggle verify`),
// base model directories (model/base_info.h) and routed models (cmd/assemble.cpp).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/manifest.h"
#include "bundle/peft_adapter.h"
#include "io/error.h"
#include "io/safetensors.h"
#include "io/terminal_text.h"
#include "verbs.h"
#ifdef GAGGLE_WITH_TORCH
#include "model/base_info.h"
#endif

namespace gaggle::cli {
namespace {

struct InspectOptions {
  std::string path;
  bool json = false;
};

int inspect_safetensors(const InspectOptions& opt) {
  auto file = io::SafetensorsFile::open(opt.path);
  std::uint64_t total_bytes = 0;
  std::int64_t total_params = 0;
  for (const auto& t : file.tensors()) {
    total_bytes += t.nbytes();
    total_params += t.numel();
  }
  if (opt.json) {
    nlohmann::ordered_json out;
    out["path"] = opt.path;
    out["tensors"] = nlohmann::ordered_json::array();
    for (const auto& t : file.tensors())
      out["tensors"].push_back({{"name", t.name}, {"dtype", std::string(io::dtype_name(t.dtype))}, {"shape", t.shape},
                                {"bytes", t.nbytes()}});
    out["metadata"] = file.metadata();
    out["total_tensors"] = file.tensors().size();
    out["total_parameters"] = total_params;
    out["total_bytes"] = total_bytes;
    out["file_bytes"] = file.file_size();
    std::cout << out.dump(2) << "\n";
    return kExitSuccess;
  }
  // Names and metadata are whatever the file's author wrote: printed inert (io/terminal_text.h).
  std::vector<std::string> names;
  std::size_t name_width = 4;
  for (const auto& t : file.tensors()) {
    names.push_back(io::terminal_safe(t.name));
    name_width = std::max(name_width, names.back().size());
  }
  std::printf("%-*s  %-5s  %-20s  %12s\n", static_cast<int>(name_width), "name", "dtype", "shape", "bytes");
  for (std::size_t i = 0; i < file.tensors().size(); ++i) {
    const auto& t = file.tensors()[i];
    std::printf("%-*s  %-5s  %-20s  %12llu\n", static_cast<int>(name_width), names[i].c_str(),
                std::string(io::dtype_name(t.dtype)).c_str(), io::shape_to_string(t.shape).c_str(),
                static_cast<unsigned long long>(t.nbytes()));
  }
  std::printf("\n%zu tensors, %lld parameters, %s of tensor data (%s file)\n", file.tensors().size(),
              static_cast<long long>(total_params), human_bytes(total_bytes).c_str(),
              human_bytes(file.file_size()).c_str());
  for (const auto& [k, v] : file.metadata())
    std::printf("metadata: %s = %s\n", io::terminal_safe(k).c_str(), io::terminal_safe(v).c_str());
  return kExitSuccess;
}

// A manifest's fields beyond the schema's are whatever its author wrote: each is read only
// when it has the type expected, and printed inert.
std::string text_field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? io::terminal_safe(it->get<std::string>()) : "";
}

std::string number_field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return "";
  return it->is_number_float() ? it->dump() : std::to_string(it->get<std::int64_t>());
}

// "1000 examples from count.jsonl; 1000 steps (best 600), validation accuracy 0.45"
std::string training_summary(const nlohmann::json& body) {
  std::string out;
  auto add = [&out](const std::string& part) { out += (out.empty() ? "" : "; ") + part; };
  if (auto data = body.find("training_data"); data != body.end() && data->is_object()) {
    std::string examples = number_field(*data, "examples"), file = text_field(*data, "file");
    if (!examples.empty()) add(examples + " examples" + (file.empty() ? "" : " from " + file));
  }
  if (auto run = body.find("training"); run != body.end() && run->is_object()) {
    std::string steps = number_field(*run, "steps"), best = number_field(*run, "best_step");
    std::string accuracy = number_field(*run, "valid_accuracy");
    if (!steps.empty()) add(steps + " steps" + (best.empty() ? "" : " (best " + best + ")"));
    if (!accuracy.empty()) add("validation accuracy " + accuracy);
  }
  return out;
}

int inspect_bundle(const InspectOptions& opt) {
  namespace fs = std::filesystem;
  const fs::path dir = opt.path;
  const bundle::Manifest m = bundle::read_manifest(dir);
  std::error_code ec;
  const bool signed_ = fs::exists(dir / bundle::kSignatureFile, ec);
  auto present = [&](const bundle::FileEntry& f) { return fs::is_regular_file(dir / f.path, ec); };
  if (opt.json) {
    nlohmann::ordered_json out;
    out["path"] = opt.path;
    out["kind"] = "bundle";
    out["signature_file"] = signed_;
    out["files_present"] = nlohmann::ordered_json::object();
    for (const auto& f : m.files) out["files_present"][f.path] = present(f);
    out["manifest"] = nlohmann::json::parse(bundle::serialize_manifest(m));
    std::cout << out.dump(2) << "\n";
    return kExitSuccess;
  }
  const nlohmann::json& body = m.body;
  std::printf("bundle:        %s@%s\n", m.name.c_str(), m.version.c_str());
  std::string method = text_field(body, "method"), rank = number_field(body, "rank");
  std::string modules;
  if (auto it = body.find("modules"); it != body.end() && it->is_array())
    modules = std::to_string(it->size()) + " modules";
  std::string details = rank.empty() ? "" : "rank " + rank;
  if (!modules.empty()) details += (details.empty() ? "" : ", ") + modules;
  if (!method.empty() || !details.empty())
    std::printf("method:        %s%s\n", method.empty() ? "?" : method.c_str(),
                details.empty() ? "" : (" (" + details + ")").c_str());
  std::printf("base:          %s\n", m.base_fingerprint.c_str());
  if (std::string license = text_field(body, "license"); !license.empty())
    std::printf("license:       %s\n", license.c_str());
  if (std::string training = training_summary(body); !training.empty())
    std::printf("training:      %s\n", training.c_str());
  if (auto gate = body.find("gate"); gate != body.end() && gate->is_object()) {
    std::string steps = number_field(*gate, "steps");
    std::printf("gate:          trained%s\n", steps.empty() ? "" : (" (" + steps + " steps)").c_str());
  } else {
    std::printf("gate:          none (PHATGOOSE routing needs one: 'gaggle train-gate')\n");
  }
  std::printf("signature:     %s\n", signed_ ? "manifest.json.sig (not checked here: run 'gaggle verify')"
                                             : "none: unsigned (sign with 'gaggle sign')");
  if (std::string description = text_field(body, "description"); !description.empty())
    std::printf("description:   %s\n", description.c_str());
  std::vector<std::string> paths;  // printable, measured for the column and then printed
  std::size_t width = 4;
  for (const auto& f : m.files) width = std::max(width, paths.emplace_back(io::terminal_safe(f.path)).size());
  std::printf("\n%zu file%s:\n", m.files.size(), m.files.size() == 1 ? "" : "s");
  for (std::size_t i = 0; i < m.files.size(); ++i) {
    const auto& f = m.files[i];
    std::string where = f.remote() ? "remote: " + io::terminal_safe(f.url.empty() ? f.parts_url : f.url)
                                   : (present(f) ? "" : "MISSING");
    if (f.tensors) where = std::to_string(f.tensors->tensors.size()) + " tensors" + (where.empty() ? "" : ", " + where);
    std::printf("  %-*s  %10s%s\n", static_cast<int>(width), paths[i].c_str(), human_bytes(f.size).c_str(),
                where.empty() ? "" : ("  " + where).c_str());
  }
  return kExitSuccess;
}

#ifdef GAGGLE_WITH_TORCH
int inspect_base(const InspectOptions& opt) {
  auto info = model::describe_base(opt.path);
  if (opt.json) {
    std::cout << info.to_json().dump(2) << "\n";
    return kExitSuccess;
  }
  std::printf("base model:    %s\n", opt.path.c_str());
  std::printf("architecture:  %s\n", info.architecture.c_str());
  std::printf("parameters:    %lld (%.1f M)\n", static_cast<long long>(info.num_parameters), info.num_parameters / 1e6);
  std::printf("dtype:         %s\n", info.dtype.c_str());
  std::string files;
  for (const auto& f : info.weight_files) files += (files.empty() ? "" : ", ") + f.filename().string();
  std::printf("weights:       %s\n", files.c_str());
  std::printf("tokenizer:     %s\n", info.tokenizer.empty() ? "none (no spiece.model or tokenizer.model)" : info.tokenizer.c_str());
  std::printf("fingerprint:   %s\n", info.fingerprint.c_str());
  std::size_t width = 4;
  for (const auto& l : info.linears) width = std::max(width, l.name.size());
  std::printf("\n%zu linear modules (d_out x d_in):\n", info.linears.size());
  for (const auto& l : info.linears)
    std::printf("  %-*s  %lld x %lld\n", static_cast<int>(width), l.name.c_str(), static_cast<long long>(l.d_out),
                static_cast<long long>(l.d_in));
  return kExitSuccess;
}
#endif

}  // namespace

#ifdef GAGGLE_WITH_TORCH
int inspect_routed_model(const std::string& path, bool json);  // cmd/assemble.cpp
#endif

Runner setup_inspect(CLI::App& sub) {
  auto opt = std::make_shared<InspectOptions>();
  sub.add_option("path", opt->path,
                 "A .safetensors file, an expert bundle, a base model directory or a routed model directory")
      ->required();
  sub.add_flag("--json", opt->json, "Print JSON for scripts instead of a table");
  set_example(sub,
              "  gaggle inspect examples/base/model.safetensors\n"
              "  gaggle inspect path/to/flan-t5-small        # a base model directory (T5 or Llama)\n"
              "  gaggle inspect pool/bundles/sst2/1.0.0      # an expert bundle's manifest (not verified)\n"
              "  gaggle inspect --json model.safetensors | jq '.tensors[].name'");
  return [opt]() -> int {
    namespace fs = std::filesystem;
    std::error_code ec;
#ifdef GAGGLE_WITH_TORCH
    if (fs::exists(fs::path(opt->path) / "assembly.json", ec)) return inspect_routed_model(opt->path, opt->json);
    if (model::is_base_dir(opt->path)) return inspect_base(*opt);
#endif
    if (fs::exists(fs::path(opt->path) / bundle::kManifestFile, ec)) return inspect_bundle(*opt);
    if (fs::exists(fs::path(opt->path) / "pool.json", ec))
      throw Error(ErrorCode::usage, "cmd", "'" + opt->path + "' is a pool",
                  "list its bundles with 'gaggle pool list --pool " + opt->path +
                      "', or inspect one: 'gaggle inspect " +
                      (fs::path(opt->path) / "bundles" / "NAME" / "VERSION").string() + "'");
    if (fs::exists(fs::path(opt->path) / bundle::kPeftConfigFile, ec))
      throw Error(ErrorCode::usage, "cmd", "'" + opt->path + "' is a Hugging Face PEFT adapter",
                  "make it an expert bundle with 'gaggle import-peft " + opt->path +
                      " --base BASE_DIR --name NAME --out BUNDLE_DIR' (docs/peft.md); its tensors: 'gaggle inspect " +
                      (fs::path(opt->path) / bundle::kPeftWeightsFile).string() + "'");
    if (fs::is_directory(opt->path, ec))
      throw Error(ErrorCode::usage, "cmd", "'" + opt->path + "' is a directory gaggle cannot describe",
                  "a base model directory holds config.json, a bundle manifest.json, a routed model assembly.json");
    return inspect_safetensors(*opt);
  };
}

}  // namespace gaggle::cli
