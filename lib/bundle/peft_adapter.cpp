#include "bundle/peft_adapter.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "bundle/contents.h"
#include "bundle/lora_scaling.h"
#include "bundle/manifest.h"
#include "io/atomic_file.h"
#include "io/error.h"
#include "io/json_file.h"
#include "io/pattern.h"
#include "io/safetensors.h"
#include "io/sha256.h"

namespace fs = std::filesystem;

namespace gaggle::bundle {
namespace {

constexpr const char* kPeftRoom = "peft";
constexpr std::string_view kKeyPrefix = "base_model.model.";
constexpr std::string_view kSuffixA = ".lora_A.weight";
constexpr std::string_view kSuffixB = ".lora_B.weight";
constexpr std::size_t kConfigMaxBytes = 1 << 20;

using ordered_json = nlohmann::ordered_json;

// A field is "set" when it would change what PEFT builds: not null, false, 0-length.
bool is_set(const ordered_json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string() || v.is_array() || v.is_object()) return !v.empty();
  return true;
}

// ---- the configuration --------------------------------------------------------------

struct PeftConfig {
  std::string source;  // the file, for errors
  ordered_json raw;
  std::int64_t r = 8;
  double lora_alpha = 8;
  bool use_rslora = false;
  std::string task_type;  // "" when null
  std::string base_model;
  ordered_json target_modules;   // null, a regex string, or a list of names
  ordered_json exclude_modules;  // likewise
  std::vector<std::pair<std::string, std::int64_t>> rank_pattern;  // in the file's order (first match wins)
  std::vector<std::pair<std::string, double>> alpha_pattern;
  std::vector<std::string> warnings;
};

// Fields gaggle either honours or may ignore because they do not change the adapter's
// function once its weights are loaded (dropout, init, bookkeeping).
const std::set<std::string>& known_fields() {
  static const std::set<std::string> fields = {
      "peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "r", "lora_alpha",
      "use_rslora", "target_modules", "exclude_modules", "rank_pattern", "alpha_pattern", "fan_in_fan_out",
      "bias", "use_dora", "modules_to_save", "lora_dropout", "init_lora_weights", "auto_mapping",
      "layers_pattern", "loftq_config", "eva_config", "corda_config", "lora_ga_config", "runtime_config",
      "megatron_core", "qalora_group_size", "peft_version"};
  return fields;
}

[[noreturn]] void refuse(const std::string& source, const std::string& what, const std::string& hint = {}) {
  throw_error(ErrorCode::unsupported, kPeftRoom, source + ": " + what, hint);
}

[[noreturn]] void malformed(const std::string& source, const std::string& what) {
  throw_error(ErrorCode::invalid, kPeftRoom, source + ": " + what);
}

std::string optional_string(const ordered_json& j, const char* key, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_string()) malformed(source, std::string("field '") + key + "' is not a string");
  return it->get<std::string>();
}

bool optional_bool(const ordered_json& j, const char* key, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) malformed(source, std::string("field '") + key + "' is not true or false");
  return it->get<bool>();
}

std::int64_t positive_rank(const ordered_json& v, const std::string& source, const std::string& field) {
  if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > 65536)
    malformed(source, "field '" + field + "' must be an integer rank in 1..65536, not " + v.dump());
  return v.get<std::int64_t>();
}

double positive_alpha(const ordered_json& v, const std::string& source, const std::string& field) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() <= 0)
    malformed(source, "field '" + field + "' must be a positive number, not " + v.dump());
  return v.get<double>();
}

void check_module_selector(const ordered_json& v, const std::string& source, const char* field) {
  if (v.is_null() || v.is_string()) return;
  if (!v.is_array()) malformed(source, std::string("field '") + field + "' is neither a string nor a list");
  for (const auto& e : v)
    if (!e.is_string()) malformed(source, std::string("field '") + field + "' lists a non-string: " + e.dump());
}

PeftConfig read_config(const fs::path& path) {
  PeftConfig c;
  c.source = path.string();
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) throw_error(ErrorCode::not_found, kPeftRoom, c.source + ": cannot read: " + ec.message());
  if (size > kConfigMaxBytes)
    malformed(c.source, "is " + std::to_string(size) + " bytes; an adapter configuration is at most 1 MB");
  const std::string text = io::read_file(path);
  if (std::string why = io::json_nesting_problem(text); !why.empty()) malformed(c.source, why);
  try {
    c.raw = ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    malformed(c.source, std::string("invalid JSON: ") + e.what());
  }
  const auto& j = c.raw;
  if (!j.is_object()) malformed(c.source, "not a JSON object");

  const std::string peft_type = optional_string(j, "peft_type", c.source);
  if (peft_type.empty()) malformed(c.source, "field 'peft_type' is missing");
  if (peft_type != "LORA")
    refuse(c.source, "peft_type '" + peft_type + "' is not LORA", "gaggle's experts are LoRA adapters");

  // The refusals with their own words first, then everything else that is set.
  if (optional_bool(j, "use_dora", c.source))
    refuse(c.source, "use_dora is true: DoRA rescales each weight column by a trained magnitude, which a LoRA expert cannot hold",
           "export the adapter without DoRA, or merge it into a base model");
  if (auto m = j.find("modules_to_save"); m != j.end() && is_set(*m))
    refuse(c.source, "modules_to_save " + m->dump() + ": the adapter replaces whole modules of the base (a new head?), which an expert bundle cannot carry");
  if (auto b = j.find("bias"); b != j.end() && !b->is_null()) {
    if (!b->is_string()) malformed(c.source, "field 'bias' is not a string");
    if (b->get<std::string>() != "none")
      refuse(c.source, "bias '" + b->get<std::string>() + "': the adapter trains biases; gaggle experts train only LoRA's A and B");
  }
  if (auto l = j.find("layers_to_transform"); l != j.end() && is_set(*l))
    refuse(c.source, "layers_to_transform " + l->dump() + " is not supported",
           "give the layers in target_modules instead (a regex such as '.*\\.block\\.[01]\\..*\\.q')");
  for (const auto& [key, value] : j.items())
    if (!known_fields().count(key) && key != "layers_to_transform" && is_set(value))
      refuse(c.source, "field '" + key + "' = " + value.dump() + " is set, and gaggle does not know how to honour it",
             "import refuses what it cannot represent exactly rather than guess");

  if (auto r = j.find("r"); r != j.end()) c.r = positive_rank(*r, c.source, "r");
  if (auto a = j.find("lora_alpha"); a != j.end()) c.lora_alpha = positive_alpha(*a, c.source, "lora_alpha");
  c.use_rslora = optional_bool(j, "use_rslora", c.source);
  c.task_type = optional_string(j, "task_type", c.source);
  c.base_model = optional_string(j, "base_model_name_or_path", c.source);
  if (optional_bool(j, "fan_in_fan_out", c.source))
    c.warnings.push_back(
        "fan_in_fan_out is true, but every target is a Linear layer: PEFT sets it to false for those, and so does gaggle");
  if (auto t = j.find("target_modules"); t != j.end()) c.target_modules = *t;
  check_module_selector(c.target_modules, c.source, "target_modules");
  if (auto t = j.find("exclude_modules"); t != j.end()) c.exclude_modules = *t;
  check_module_selector(c.exclude_modules, c.source, "exclude_modules");
  for (const char* field : {"rank_pattern", "alpha_pattern"}) {
    auto p = j.find(field);
    if (p == j.end() || p->is_null()) continue;
    if (!p->is_object()) malformed(c.source, std::string("field '") + field + "' is not an object");
    for (const auto& [key, value] : p->items()) {
      const std::string where = std::string(field) + "['" + key + "']";
      if (std::string(field) == "rank_pattern")
        c.rank_pattern.emplace_back(key, positive_rank(value, c.source, where));
      else
        c.alpha_pattern.emplace_back(key, positive_alpha(value, c.source, where));
    }
  }
  return c;
}

// Python's re.fullmatch(pattern, text), with bounded work (io/pattern.h).
bool full_match(const std::string& pattern, const std::string& text, const std::string& source, const std::string& field) {
  const io::PatternMatch m = io::Pattern(pattern, io::Pattern::Anchor::full).match(text);
  if (!m.error.empty())
    malformed(source,
              "field '" + field + "': '" + pattern + "' is not a regular expression gaggle can use (" + m.error + ")");
  return m.matched;
}

// PEFT's rule for target_modules / exclude_modules: a string is a regex matched against
// the whole module path ("all-linear": every linear but the output layer); a list names
// modules by their path or a suffix starting after a '.'.
bool selects(const ordered_json& selector, const std::string& module, const std::string& source, const char* field) {
  if (selector.is_string()) {
    std::string s = selector.get<std::string>();
    std::string lower = s;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (lower == "all-linear") return true;  // the caller's list holds no output layer
    return full_match(s, module, source, field);
  }
  for (const auto& e : selector) {
    const std::string name = e.get<std::string>();
    if (module == name || module.ends_with("." + name)) return true;
  }
  return false;
}

// PEFT's get_pattern_key: the first key (in the file's order) for which
// re.match(r"(.*\.)?(KEY)$", module) succeeds.
template <typename T>
const T* pattern_value(const std::vector<std::pair<std::string, T>>& patterns, const std::string& module,
                       const std::string& source, const char* field) {
  for (const auto& [key, value] : patterns)
    if (full_match("(.*\\.)?(" + key + ")", module, source, std::string(field) + "['" + key + "']")) return &value;
  return nullptr;
}

// ---- tensors ------------------------------------------------------------------------

struct LoraPair {
  const io::TensorInfo* a = nullptr;
  const io::TensorInfo* b = nullptr;
};

std::vector<float> to_f32(const io::SafetensorsFile& file, const io::TensorInfo& info) {
  std::vector<float> out(static_cast<std::size_t>(info.numel()));
  io::convert_to_f32(info.dtype, file.data(info), out.data(), out.size());
  return out;
}

bool is_float(io::DType d) {
  return d == io::DType::F32 || d == io::DType::F16 || d == io::DType::BF16 || d == io::DType::F64;
}

// PEFT's tensor names -> module path and LoRA pair; anything else is refused by name.
std::map<std::string, LoraPair> lora_pairs(const io::SafetensorsFile& file) {
  const std::string source = file.path().string();
  std::map<std::string, LoraPair> pairs;
  for (const auto& t : file.tensors()) {
    const std::string& key = t.name;
    if (key.find("lora_magnitude_vector") != std::string::npos)
      refuse(source, "tensor '" + key + "' is a DoRA magnitude vector", "gaggle's experts are plain LoRA");
    if (key.find("lora_embedding_A") != std::string::npos || key.find("lora_embedding_B") != std::string::npos)
      refuse(source, "tensor '" + key + "' is a LoRA on an embedding; gaggle adapts linear layers only");
    if (key.rfind(kKeyPrefix, 0) != 0 || !(key.ends_with(kSuffixA) || key.ends_with(kSuffixB)))
      refuse(source, "tensor '" + key + "' is not a LoRA factor ('base_model.model.<module>.lora_A.weight' or '.lora_B.weight')",
             "biases and saved modules cannot be carried by an expert bundle");
    if (!is_float(t.dtype))
      malformed(source, "tensor '" + key + "' is " + std::string(io::dtype_name(t.dtype)) + ", not a float type");
    if (t.shape.size() != 2)
      malformed(source, "tensor '" + key + "' has shape " + io::shape_to_string(t.shape) + ", expected 2 dimensions");
    const bool is_a = key.ends_with(kSuffixA);
    const std::string module =
        key.substr(kKeyPrefix.size(), key.size() - kKeyPrefix.size() - (is_a ? kSuffixA.size() : kSuffixB.size()));
    (is_a ? pairs[module].a : pairs[module].b) = &t;
  }
  for (const auto& [module, p] : pairs)
    if (!p.a || !p.b)
      malformed(source, "module '" + module + "' has " + (p.a ? "lora_A but no lora_B" : "lora_B but no lora_A"));
  if (pairs.empty()) malformed(source, "holds no LoRA tensors");
  return pairs;
}

std::string dtype_summary(const std::set<std::string>& dtypes) {
  std::string out;
  for (const auto& d : dtypes) out += (out.empty() ? "" : "+") + d;
  return out;
}

// Escapes a module path for a PEFT pattern key (a regex).
std::string regex_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (std::strchr(".^$|()[]{}*+?\\", ch)) out += '\\';
    out += ch;
  }
  return out;
}

std::string task_type_of_modules(const std::vector<std::string>& modules) {
  if (modules.empty()) return {};
  const std::string& m = modules.front();
  if (m.rfind("encoder.", 0) == 0 || m.rfind("decoder.", 0) == 0) return "SEQ_2_SEQ_LM";
  if (m.rfind("model.layers.", 0) == 0) return "CAUSAL_LM";
  return {};
}

}  // namespace

// ---- import -------------------------------------------------------------------------

PeftImportResult import_peft(const PeftImportOptions& options) {
  const fs::path& dir = options.adapter_dir;
  if (!fs::is_directory(dir))
    throw_error(
        ErrorCode::not_found, kPeftRoom, "adapter directory '" + dir.string() + "' does not exist",
        "point it at the folder PEFT's save_pretrained wrote (adapter_config.json + adapter_model.safetensors)");
  const fs::path weights = dir / kPeftWeightsFile;
  if (!fs::exists(weights)) {
    if (fs::exists(dir / kPeftPickleFile))
      refuse((dir / kPeftPickleFile).string(),
             "is a Python pickle; gaggle never unpickles (loading a pickle can run arbitrary code)",
             "where you trust the file, re-save it as safetensors: PeftModel.save_pretrained(dir, safe_serialization=True)");
    throw_error(ErrorCode::not_found, kPeftRoom, "'" + dir.string() + "' has no " + kPeftWeightsFile);
  }
  if (!fs::exists(dir / kPeftConfigFile))
    throw_error(ErrorCode::not_found, kPeftRoom, "'" + dir.string() + "' has no " + kPeftConfigFile);
  PeftConfig config = read_config(dir / kPeftConfigFile);
  if (!config.task_type.empty() && config.task_type != options.task_type)
    throw_error(
        ErrorCode::mismatch, kPeftRoom,
        config.source + ": task_type '" + config.task_type + "' does not fit this base, which needs '" +
            options.task_type + "'",
        "a classification or other task type adds a head gaggle cannot carry; import adapters made for this base");

  auto file = io::SafetensorsFile::open(weights);
  const std::string wsource = weights.string();
  auto pairs = lora_pairs(file);

  std::map<std::string, const BaseLinear*> by_name;
  for (const auto& l : options.linears) by_name[l.name] = &l;
  for (const auto& [module, p] : pairs)
    if (!by_name.count(module))
      throw_error(ErrorCode::mismatch, kPeftRoom,
                  wsource + ": module '" + module + "' is not a linear layer of this base",
                  "the adapter was made for another base model (or adapts its output layer or embeddings)");

  PeftImportResult result;
  result.rank = config.r;
  result.use_rslora = config.use_rslora;
  result.warnings = config.warnings;
  LoraScaling scaling;
  scaling.alpha = config.lora_alpha;
  scaling.use_rslora = config.use_rslora;

  io::SafetensorsWriter writer;
  std::vector<std::string> modules;
  std::set<std::string> dtypes;
  nlohmann::json dtype_by_tensor = nlohmann::json::object();
  for (const auto& linear : options.linears) {  // model order
    const std::string& module = linear.name;
    const bool targeted = config.target_modules.is_null()
                              ? pairs.count(module) > 0
                              : selects(config.target_modules, module, config.source, "target_modules");
    const bool excluded =
        !config.exclude_modules.is_null() && selects(config.exclude_modules, module, config.source, "exclude_modules");
    auto it = pairs.find(module);
    if (it == pairs.end()) {
      if (targeted && !excluded)
        malformed(wsource, "has no LoRA for module '" + module + "', which target_modules selects");
      continue;
    }
    if (!targeted || excluded)
      malformed(config.source, std::string("module '") + module + "' has LoRA tensors but " +
                                   (excluded ? "exclude_modules excludes it" : "target_modules does not select it"));
    const auto& a = *it->second.a;
    const auto& b = *it->second.b;
    const std::int64_t r = a.shape[0];
    if (a.shape[1] != linear.d_in || b.shape[0] != linear.d_out)
      throw_error(ErrorCode::mismatch, kPeftRoom,
                  wsource + ": module '" + module + "': lora_A " + io::shape_to_string(a.shape) + " and lora_B " +
                      io::shape_to_string(b.shape) + " do not fit the base's layer [d_out " +
                      std::to_string(linear.d_out) + ", d_in " + std::to_string(linear.d_in) + "]",
                  "the adapter was made for another base model");
    if (b.shape[1] != r)
      malformed(wsource, "module '" + module + "': lora_A has " + std::to_string(r) + " rows but lora_B " +
                             std::to_string(b.shape[1]) + " columns");
    const std::int64_t* pattern_r = pattern_value(config.rank_pattern, module, config.source, "rank_pattern");
    const std::int64_t want_r = pattern_r ? *pattern_r : config.r;
    if (r != want_r)
      malformed(wsource, "module '" + module + "' has rank " + std::to_string(r) + ", but " + config.source +
                             " gives it " + std::to_string(want_r) + (pattern_r ? " (rank_pattern)" : " (r)"));
    if (r != config.r) result.per_module_ranks = true;
    if (const double* pa = pattern_value(config.alpha_pattern, module, config.source, "alpha_pattern");
        pa && *pa != config.lora_alpha) {
      scaling.alpha_by_module[module] = *pa;
      result.per_module_alphas = true;
    }
    for (const auto* t : {&a, &b}) {
      const std::string name = module + (t == &a ? ".lora_A" : ".lora_B");
      auto values = to_f32(file, *t);
      writer.add_f32(name, t->shape, values);
      dtypes.insert(std::string(io::dtype_name(t->dtype)));
      dtype_by_tensor[name] = std::string(io::dtype_name(t->dtype));
    }
    modules.push_back(module);
  }

  // Gates and keys exported by gaggle come back with the adapter.
  const fs::path routing = dir / kPeftRoutingFile;
  if (fs::exists(routing)) {
    auto rfile = io::SafetensorsFile::open(routing);
    std::set<std::string> adapted(modules.begin(), modules.end());
    for (const auto& t : rfile.tensors()) {
      const std::string where = routing.string() + ": tensor '" + t.name + "'";
      if (t.dtype != io::DType::F32) malformed(routing.string(), "tensor '" + t.name + "' is not F32");
      if (t.name == "retrieval_embeddings") {
        if (t.shape.size() != 2) malformed(routing.string(), "tensor 'retrieval_embeddings' is not 2-D");
      } else {
        const auto dot = t.name.rfind('.');
        const std::string module = dot == std::string::npos ? "" : t.name.substr(0, dot);
        const std::string kind = dot == std::string::npos ? "" : t.name.substr(dot + 1);
        if ((kind != "gate" && kind != "avg_act") || !adapted.count(module))
          malformed(routing.string(), "tensor '" + t.name + "' is neither '<adapted module>.gate' nor '.avg_act' nor 'retrieval_embeddings'");
        if (t.shape != std::vector<std::int64_t>{by_name.at(module)->d_in})
          malformed(routing.string(), "tensor '" + t.name + "' has shape " + io::shape_to_string(t.shape) +
                                          ", expected [" + std::to_string(by_name.at(module)->d_in) + "]");
        if (kind == "gate") result.has_gates = true;
      }
      auto values = to_f32(rfile, t);
      writer.add_f32(t.name, t.shape, values);
    }
  }

  result.modules = static_cast<std::int64_t>(modules.size());
  result.dtype = dtype_summary(dtypes);

  io::AtomicDirectory out(options.out_dir);
  writer.set_metadata("format", "gaggle-expert");
  writer.write(out.path() / "adapter.safetensors");
  Manifest m;
  m.name = options.name;
  m.version = options.version;
  m.base_fingerprint = options.base_fingerprint;
  nlohmann::json source = {{"format", "peft"},
                           {"adapter_config", nlohmann::json::parse(config.raw.dump())},
                           {"adapter_model_sha256", io::sha256_file_hex(weights)}};
  if (dtypes.size() == 1)
    source["dtype"] = *dtypes.begin();
  else
    source["dtype_by_tensor"] = dtype_by_tensor;
  m.body = {{"method", result.has_gates ? "phatgoose" : "lora"},
            {"rank", config.r},
            {"modules", modules},
            {"targets", config.target_modules.is_null() ? nlohmann::json("as in adapter_model.safetensors")
                                                        : nlohmann::json::parse(config.target_modules.dump())},
            {"source", source}};
  if (!config.base_model.empty()) m.body["base_model"] = config.base_model;
  scaling.write_to(m.body);
  if (!options.license.empty()) m.body["license"] = options.license;
  if (!options.description.empty()) m.body["description"] = options.description;
  write_manifest(out.path(), m);
  out.commit(options.force);
  return result;
}

// ---- export -------------------------------------------------------------------------

PeftExportResult export_peft(const PeftExportOptions& options) {
  const fs::path& dir = options.bundle_dir;
  Manifest m = read_manifest(dir);
  const std::string msource = (dir / kManifestFile).string();
  check_bundle_files(dir, m, /*allow_remote_files=*/false);
  if (!m.find("adapter.safetensors"))
    throw_error(ErrorCode::invalid, kPeftRoom, msource + ": the manifest lists no adapter.safetensors");
  const LoraScaling scaling = lora_scaling(m.body, msource);
  auto file = io::SafetensorsFile::open(dir / "adapter.safetensors");
  const std::string fsource = file.path().string();

  // Modules in the manifest's order when it lists them, else the file's.
  std::vector<std::string> modules;
  if (auto it = m.body.find("modules"); it != m.body.end() && it->is_array()) {
    for (const auto& e : *it)
      if (e.is_string()) modules.push_back(e.get<std::string>());
  }
  if (modules.empty())
    for (const auto& t : file.tensors())
      if (t.name.ends_with(".lora_A")) modules.push_back(t.name.substr(0, t.name.size() - 7));
  if (modules.empty()) malformed(fsource, "holds no '<module>.lora_A'");

  // The dtype each tensor goes back to: the one it was imported with, else F32.
  const nlohmann::json* src = nullptr;
  if (auto it = m.body.find("source"); it != m.body.end() && it->is_object() && it->value("format", "") == "peft")
    src = &*it;
  auto dtype_for = [&](const std::string& name) {
    std::string d = "F32";
    if (src && src->contains("dtype") && src->at("dtype").is_string()) d = src->at("dtype").get<std::string>();
    if (src && src->contains("dtype_by_tensor") && src->at("dtype_by_tensor").is_object() &&
        src->at("dtype_by_tensor").contains(name) && src->at("dtype_by_tensor").at(name).is_string())
      d = src->at("dtype_by_tensor").at(name).get<std::string>();
    auto dt = io::dtype_from_name(d);
    if (!dt || !(*dt == io::DType::F32 || *dt == io::DType::F16 || *dt == io::DType::BF16))
      malformed(msource, "source dtype '" + d + "' of tensor '" + name + "' is not F32, F16 or BF16");
    return *dt;
  };

  io::SafetensorsWriter weights;
  std::map<std::int64_t, int> rank_count;
  std::map<std::string, std::int64_t> rank_of;
  for (const auto& module : modules) {
    for (const char* part : {".lora_A", ".lora_B"}) {
      const std::string name = module + part;
      const io::TensorInfo* t = file.find(name);
      if (!t) malformed(fsource, "tensor '" + name + "' is missing (the manifest lists module '" + module + "')");
      if (t->shape.size() != 2) malformed(fsource, "tensor '" + name + "' is not 2-D");
      auto values = to_f32(file, *t);
      const std::string key = std::string(kKeyPrefix) + module + part + ".weight";
      const io::DType dt = dtype_for(name);
      if (dt == io::DType::F32) {
        weights.add_f32(key, t->shape, values);
      } else {
        std::vector<std::uint16_t> half(values.size());
        for (std::size_t i = 0; i < values.size(); ++i)
          half[i] = dt == io::DType::F16 ? io::f32_to_f16_bits(values[i]) : io::f32_to_bf16_bits(values[i]);
        weights.add(key, dt, t->shape, std::as_bytes(std::span<const std::uint16_t>(half)));
      }
      if (std::string(part) == ".lora_A") {
        rank_of[module] = t->shape[0];
        ++rank_count[t->shape[0]];
      }
    }
  }
  // r: the most common rank (the smallest of a tie); the others go to rank_pattern.
  std::int64_t r = 0;
  int best = 0;
  for (const auto& [rank, count] : rank_count)
    if (count > best) r = rank, best = count;

  PeftExportResult result;
  result.modules = static_cast<std::int64_t>(modules.size());
  result.rank = r;
  if (src && src->contains("adapter_config") && src->at("adapter_config").is_object()) {
    const auto& imported = src->at("adapter_config");
    if (imported.contains("task_type") && imported["task_type"].is_string())
      result.task_type = imported["task_type"].get<std::string>();
  }
  if (result.task_type.empty()) result.task_type = task_type_of_modules(modules);

  std::string base_model = options.base_model;
  if (base_model.empty() && m.body.contains("base_model") && m.body["base_model"].is_string())
    base_model = m.body["base_model"].get<std::string>();

  // Patterns name modules by their full, escaped path, so each matches one module only.
  ordered_json rank_pattern = ordered_json::object(), alpha_pattern = ordered_json::object();
  for (const auto& module : modules) {
    if (rank_of[module] != r) rank_pattern[regex_escape(module)] = rank_of[module];
    if (scaling.alpha_by_module.count(module)) alpha_pattern[regex_escape(module)] = scaling.alpha_by_module.at(module);
  }
  ordered_json config;
  config["peft_type"] = "LORA";
  config["task_type"] = result.task_type.empty() ? ordered_json(nullptr) : ordered_json(result.task_type);
  config["base_model_name_or_path"] = base_model.empty() ? ordered_json(nullptr) : ordered_json(base_model);
  config["r"] = r;
  config["lora_alpha"] = scaling.alpha;
  config["use_rslora"] = scaling.use_rslora;
  config["target_modules"] = modules;
  config["rank_pattern"] = rank_pattern;
  config["alpha_pattern"] = alpha_pattern;
  config["lora_dropout"] = 0.0;
  config["bias"] = "none";
  config["fan_in_fan_out"] = false;
  config["modules_to_save"] = nullptr;
  config["use_dora"] = false;
  config["init_lora_weights"] = true;
  config["inference_mode"] = true;

  // Gates, average activations and retrieval embeddings: PEFT ignores this file.
  io::SafetensorsWriter routing;
  for (const auto& t : file.tensors()) {
    const bool keep = t.name == "retrieval_embeddings" || t.name.ends_with(".gate") || t.name.ends_with(".avg_act");
    if (!keep) continue;
    auto values = to_f32(file, t);
    routing.add_f32(t.name, t.shape, values);
  }

  io::AtomicDirectory out(options.out_dir);
  weights.set_metadata("format", "pt");
  weights.write(out.path() / kPeftWeightsFile);
  io::write_file_atomic(out.path() / kPeftConfigFile, config.dump(2) + "\n");
  if (routing.size() > 0) {
    routing.set_metadata("format", "gaggle-routing");
    routing.set_metadata("bundle", m.name + "@" + m.version);
    routing.write(out.path() / kPeftRoutingFile);
    result.wrote_routing = true;
  }
  out.commit(options.force);
  return result;
}

}  // namespace gaggle::bundle
