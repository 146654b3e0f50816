#include "route/routed_model.h"

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "model/base_model.h"
#include "route/ivf_index.h"
#include "route/merged.h"
#include "route/retrieval_linear.h"
#include "route/routed_linear.h"
#include "route/smear.h"
#include "route/tensor_file.h"

namespace gaggle::route {
namespace fs = std::filesystem;
namespace {

// The named tensor, which must have this shape and be stored as `dtype` (assembly.json
// says which). BF16 stays bfloat16 with keep_bf16 (the routed layer widens it as it
// loads), and is converted to float32 otherwise.
at::Tensor module_tensor(const std::shared_ptr<const io::SafetensorsFile>& file, const std::string& name,
                         const std::vector<std::int64_t>& shape, io::DType dtype = io::DType::F32,
                         bool keep_bf16 = false) {
  const io::TensorInfo* info = file->find(name);
  if (!info)
    throw_error(ErrorCode::invalid, "route", file->path().string() + ": tensor '" + name + "' is missing",
                "the routed model is incomplete: assemble it again");
  if (info->dtype != dtype || info->shape != shape)
    throw_error(ErrorCode::invalid, "route",
                file->path().string() + ": tensor '" + name + "' is " + std::string(io::dtype_name(info->dtype)) + " " +
                    io::shape_to_string(info->shape) + ", expected " + std::string(io::dtype_name(dtype)) + " " +
                    io::shape_to_string(shape));
  return read_tensor(file, name, keep_bf16);
}

// Format 3: every expert's file, mapped once (the factors stay in the page cache until a
// token chooses the expert).
std::vector<std::shared_ptr<const io::SafetensorsFile>> open_expert_files(const Assembly& a, const fs::path& model_dir) {
  std::vector<std::shared_ptr<const io::SafetensorsFile>> files;
  for (const auto& e : a.experts)
    files.push_back(std::make_shared<const io::SafetensorsFile>(io::SafetensorsFile::open(model_dir / e.file)));
  return files;
}

}  // namespace

RoutedModel RoutedModel::attach(model::BaseModel& model, const fs::path& model_dir, const std::string& base_fingerprint) {
  RoutedModel out;
  out.assembly_ = read_assembly(model_dir);
  const Assembly& a = out.assembly_;
  if (a.base_fingerprint != base_fingerprint)
    throw_error(ErrorCode::mismatch, "route",
                "routed model '" + model_dir.string() + "' was assembled on base " + a.base_fingerprint +
                    ", but the base given is " + base_fingerprint,
                "load it with the base it was assembled on (" + a.base_dir + ")");
  const auto n = static_cast<std::int64_t>(a.experts.size());
  RoutedLinearOptions options;
  options.top_k = a.top_k;
  options.lora_scale = 1.0;  // alpha / r is folded into B
  options.score = a.router == RouterKind::arrow ? ScoreKind::abs_dot : ScoreKind::layer_norm_dot;
  const bool per_token =
      a.router == RouterKind::phatgoose || a.router == RouterKind::arrow || a.router == RouterKind::average_activation;
  std::vector<std::pair<std::string, std::shared_ptr<model::LinearAdapter>>> adapters;
  std::shared_ptr<RetrievalChoice> choice;
  if (a.router == RouterKind::retrieval) {
    const fs::path path = model_dir / a.retrieval.file;
    if (a.retrieval.file.empty() || a.retrieval.file.find('/') != std::string::npos)
      throw_error(ErrorCode::invalid, "route", (model_dir / kAssemblyFile).string() + ": /retrieval/file is not a file of the model");
    auto file = std::make_shared<const io::SafetensorsFile>(io::SafetensorsFile::open(path));
    RetrievalIndex index;
    index.embeddings = module_tensor(file, kRetrievalIndexEmbeddings, {a.retrieval.rows, a.retrieval.d_model});
    const io::TensorInfo* owner = file->find(kRetrievalIndexExpert);
    if (!owner || owner->dtype != io::DType::I64 || owner->shape != std::vector<std::int64_t>{a.retrieval.rows})
      throw_error(ErrorCode::invalid, "route",
                  path.string() + ": tensor '" + std::string(kRetrievalIndexExpert) + "' must be I64 [" +
                      std::to_string(a.retrieval.rows) + "]",
                  "the routed model is incomplete: assemble it again");
    index.expert = read_tensor(file, kRetrievalIndexExpert);
    index.experts = n;
    check_retrieval_index(index, path.string());
    if (index.width() != model.hidden_size())
      throw_error(ErrorCode::mismatch, "route",
                  path.string() + ": embeddings of width " + std::to_string(index.width()) + ", the base's d_model is " +
                      std::to_string(model.hidden_size()));
    const auto device = model.device();
    if (!device.is_cpu()) index.embeddings = index.embeddings.to(device), index.expert = index.expert.to(device);
    choice = std::make_shared<RetrievalChoice>(std::move(index));
    out.choice_ = choice;
  }
  std::vector<std::shared_ptr<const io::SafetensorsFile>> expert_files;
  for (const auto& m : a.modules) {
    auto weight = model.linear_weight(m.name);  // Error{not_found} for a module the base lacks
    if (weight.size(0) != m.d_out || weight.size(1) != m.d_in)
      throw_error(ErrorCode::mismatch, "route",
                  "routed model module '" + m.name + "' is " + std::to_string(m.d_out) + " x " + std::to_string(m.d_in) +
                      ", the base's is " + std::to_string(weight.size(0)) + " x " + std::to_string(weight.size(1)));
    auto file = std::make_shared<const io::SafetensorsFile>(io::SafetensorsFile::open(model_dir / m.file));
    const auto device = weight.device();
    std::vector<at::Tensor> a_of, b_of;  // per expert
    if (a.format_version >= 3) {
      if (expert_files.empty()) expert_files = open_expert_files(a, model_dir);
      for (const auto& f : expert_files) {
        // 16-bit factors stay 16-bit for the per-token routers' kernel (routed_linear.h);
        // the routers that mix experts' weights get float32.
        a_of.push_back(module_tensor(f, m.name + ".A", {m.rank, m.d_in}, a.factor_dtype, per_token));
        b_of.push_back(module_tensor(f, m.name + ".B", {m.d_out, m.rank}, a.factor_dtype, per_token));
        if (!device.is_cpu()) a_of.back() = a_of.back().to(device), b_of.back() = b_of.back().to(device);
      }
    } else {
      auto A = module_tensor(file, m.name + ".A", {n, m.rank, m.d_in});
      auto B = module_tensor(file, m.name + ".B", {n, m.d_out, m.rank});
      if (!device.is_cpu()) A = A.to(device), B = B.to(device);
      a_of = A.unbind(0), b_of = B.unbind(0);
    }
    // The routers that use every expert at once take them stacked; per-token and
    // per-example routers take each expert's (memory-mapped) factors and touch only the
    // experts their tokens choose.
    auto stacked = [&] { return std::make_pair(at::stack(a_of), at::stack(b_of)); };
    if (per_token) {
      auto keys = module_tensor(file, m.name + ".keys", {n, m.d_in});
      if (!device.is_cpu()) keys = keys.to(device);
      auto layer = std::make_shared<RoutedLinear>(std::move(a_of), std::move(b_of), keys, options);
      if (a.index.kind == "ivf") {
        auto index = std::make_shared<IvfIndex>();
        auto tensor = [&](const std::string& name) {
          if (!file->find(name))
            throw_error(ErrorCode::invalid, "route", file->path().string() + ": tensor '" + name + "' is missing",
                        "the routed model is incomplete: assemble it again");
          return read_tensor(file, name);
        };
        index->centroids = tensor(m.name + ".ivf_centroids");
        index->members = tensor(m.name + ".ivf_members");
        index->offsets = tensor(m.name + ".ivf_offsets");
        check_ivf_index(*index, n, m.d_in, file->path().string());
        if (!device.is_cpu()) index->centroids = index->centroids.to(device);
        group_keys(*index, keys);
        layer->set_index(index, a.index.probe, a.index.probe_margin);
      }
      out.traced_.emplace_back(m.name, [layer](std::vector<std::int64_t>* c) { layer->set_trace(c); });
      adapters.emplace_back(m.name, layer);
    } else if (a.router == RouterKind::smear) {
      auto keys = module_tensor(file, m.name + ".keys", {n, m.d_in});
      if (!device.is_cpu()) keys = keys.to(device);
      auto [A, B] = stacked();
      adapters.emplace_back(m.name, std::make_shared<SmearLinear>(A, B, keys, SmearOptions{1.0}));
    } else if (a.router == RouterKind::retrieval) {
      auto layer = std::make_shared<RetrievalLinear>(std::move(a_of), std::move(b_of), choice, 1.0);
      out.traced_.emplace_back(m.name, [layer](std::vector<std::int64_t>* c) { layer->set_trace(c); });
      adapters.emplace_back(m.name, layer);
    } else {
      const MergeForm form = a.router == RouterKind::merged_factors ? MergeForm::factors : MergeForm::products;
      auto [A, B] = stacked();
      adapters.emplace_back(m.name, std::make_shared<MergedLinear>(A, B, 1.0, form));
    }
  }
  for (auto& [name, adapter] : adapters) model.set_adapter(name, adapter);
  return out;
}

void RoutedModel::enable_trace() {
  const std::size_t n = assembly_.experts.size();
  for (auto& [name, set_trace] : traced_) {
    auto& counts = counts_[name];
    counts.assign(n, 0);
    set_trace(&counts);
  }
}

nlohmann::json RoutedModel::trace_json() const {
  nlohmann::json j;
  j["format_version"] = 1;
  j["router"] = std::string(router_name(assembly_.router));
  j["top_k"] = assembly_.top_k;
  j["experts"] = nlohmann::json::array();
  for (const auto& e : assembly_.experts) j["experts"].push_back(e.name + "/" + e.version);
  j["modules"] = nlohmann::json::object();
  std::vector<std::int64_t> total(assembly_.experts.size(), 0);
  for (const auto& [name, counts] : counts_) {
    j["modules"][name] = counts;
    for (std::size_t i = 0; i < counts.size(); ++i) total[i] += counts[i];
  }
  j["total"] = total;
  return j;
}

std::vector<std::int64_t> RoutedModel::retrieval_choice() const {
  if (!choice_)
    throw_error(ErrorCode::invalid, "route",
                "routed model: router '" + std::string(router_name(assembly_.router)) + "' makes no retrieval choice");
  return choice_->rows();
}

void RoutedModel::write_trace(const fs::path& path) const { io::write_json_file_atomic(path, trace_json()); }

}  // namespace gaggle::route
