// gaggle inspect — describe what a path holds: safetensors files and base model
// directories (model/base_info.h). Bundles and routed models join as their issues land
// (dispatch on what the path is).
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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
  sub.add_option("path", opt->path, "A .safetensors file or a base model directory")->required();
  sub.add_flag("--json", opt->json, "Print JSON for scripts instead of a table");
  set_example(sub,
              "  gaggle inspect examples/base/model.safetensors\n"
              "  gaggle inspect path/to/flan-t5-small        # a base model directory (T5 or Llama)\n"
              "  gaggle inspect --json model.safetensors | jq '.tensors[].name'");
  return [opt]() -> int {
    namespace fs = std::filesystem;
    std::error_code ec;
#ifdef GAGGLE_WITH_TORCH
    if (fs::exists(fs::path(opt->path) / "assembly.json", ec)) return inspect_routed_model(opt->path, opt->json);
    if (model::is_base_dir(opt->path)) return inspect_base(*opt);
#endif
    if (fs::is_directory(opt->path, ec))
      throw Error(ErrorCode::usage, "cmd", "'" + opt->path + "' is a directory",
                  "a base model directory holds config.json; inspecting bundles and routed models is not built yet");
    return inspect_safetensors(*opt);
  };
}

}  // namespace gaggle::cli
