#include "bundle/gate_separation.h"

#include <cctype>
#include <cmath>
#include <map>

#include "io/dtype.h"
#include "io/error.h"
#include "io/safetensors.h"

namespace gaggle::bundle {
namespace {

using Vector = std::vector<double>;

constexpr std::string_view kGate = ".gate", kAvgAct = ".avg_act";

// LayerNorm without affine, in double.
Vector standardise(const Vector& v) {
  double mean = 0, var = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  for (double x : v) var += (x - mean) * (x - mean);
  var /= static_cast<double>(v.size());
  const double inv = 1.0 / std::sqrt(var + 1e-5);
  Vector out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = (v[i] - mean) * inv;
  return out;
}

double dot(const Vector& a, const Vector& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

double cosine(const Vector& a, const Vector& b) {
  const double na = std::sqrt(dot(a, a)), nb = std::sqrt(dot(b, b));
  return na > 0 && nb > 0 ? dot(a, b) / (na * nb) : 0.0;
}

double mean_pair_cosine(const std::vector<Vector>& keys) {
  double sum = 0;
  int pairs = 0;
  for (std::size_t i = 0; i < keys.size(); ++i)
    for (std::size_t j = i + 1; j < keys.size(); ++j, ++pairs) sum += cosine(keys[i], keys[j]);
  return pairs ? sum / pairs : 0.0;
}

// Whether `input` scores gate i strictly highest of all gates (ties go against expert i).
bool own_gate_wins(const Vector& input, const std::vector<Vector>& gates, std::size_t i) {
  const double own = dot(input, gates[i]);
  for (std::size_t j = 0; j < gates.size(); ++j)
    if (j != i && dot(input, gates[j]) >= own) return false;
  return true;
}

// The share of experts whose own input, with the mean input of all n removed, scores
// their own gate highest (ties against the expert).
double centred_self_top1(const std::vector<Vector>& inputs, const std::vector<Vector>& gates) {
  const std::size_t n = inputs.size();
  Vector mean(inputs[0].size(), 0.0);
  for (const auto& a : inputs)
    for (std::size_t k = 0; k < mean.size(); ++k) mean[k] += a[k] / static_cast<double>(n);
  int hits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    Vector centred = inputs[i];
    for (std::size_t k = 0; k < mean.size(); ++k) centred[k] -= mean[k];
    hits += own_gate_wins(centred, gates, i);
  }
  return static_cast<double>(hits) / static_cast<double>(n);
}

struct ExpertVectors {
  std::map<std::string, Vector> gate, avg_act;  // by module
  std::vector<std::string> order;               // modules with a gate, in file order
};

ExpertVectors read_vectors(const GateSource& source) {
  ExpertVectors out;
  auto file = io::SafetensorsFile::open(source.safetensors);
  for (const auto& t : file.tensors()) {
    const bool gate = t.name.ends_with(kGate), avg = t.name.ends_with(kAvgAct);
    if (!gate && !avg) continue;
    const std::string module = t.name.substr(0, t.name.size() - (gate ? kGate.size() : kAvgAct.size()));
    Vector v(static_cast<std::size_t>(t.numel()));
    std::vector<float> f(v.size());
    io::convert_to_f32(t.dtype, file.data(t), f.data(), f.size());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = f[i];
    if (gate) {
      out.order.push_back(module);
      out.gate[module] = std::move(v);
    } else {
      out.avg_act[module] = std::move(v);
    }
  }
  return out;
}

}  // namespace

std::string layer_of(const std::string& module) {
  std::size_t start = 0;
  while (start <= module.size()) {
    std::size_t dot_at = module.find('.', start);
    std::size_t end = dot_at == std::string::npos ? module.size() : dot_at;
    bool digits = end > start;
    for (std::size_t i = start; i < end; ++i) digits = digits && std::isdigit(static_cast<unsigned char>(module[i]));
    if (digits) return module.substr(0, end);
    if (dot_at == std::string::npos) break;
    start = dot_at + 1;
  }
  return module;
}

GateSeparation measure_gate_separation(const std::vector<GateSource>& experts) {
  if (experts.size() < 2)
    throw Error(ErrorCode::invalid, "bundle", "gate separation needs at least two experts, got " +
                                                  std::to_string(experts.size()));
  GateSeparation out;
  std::vector<ExpertVectors> vectors;
  for (const auto& e : experts) {
    out.experts.push_back(e.label);
    vectors.push_back(read_vectors(e));
  }
  const std::size_t n = experts.size();
  std::map<std::string, std::size_t> layer_at;
  std::vector<int> expert_hits(n, 0);
  // Every field is the mean over modules of a per-module value: summed here, divided last.
  auto add = [](LayerSeparation& l, const LayerSeparation& module) {
    l.gate_cosine += module.gate_cosine;
    l.avg_act_cosine += module.avg_act_cosine;
    l.own_alignment += module.own_alignment;
    l.self_top1 += module.self_top1;
    l.centred_top1 += module.centred_top1;
    ++l.modules;
  };
  auto finish = [](LayerSeparation& l) {
    l.gate_cosine /= l.modules;
    l.avg_act_cosine /= l.modules;
    l.own_alignment /= l.modules;
    l.self_top1 /= l.modules;
    l.centred_top1 /= l.modules;
  };
  for (const auto& module : vectors[0].order) {
    std::vector<Vector> gate_keys, avg_keys;
    bool complete = true;
    for (std::size_t i = 0; i < n && complete; ++i) {
      auto g = vectors[i].gate.find(module);
      auto a = vectors[i].avg_act.find(module);
      complete = g != vectors[i].gate.end() && a != vectors[i].avg_act.end();
      if (!complete) break;
      if (g->second.size() != vectors[0].gate.at(module).size() || a->second.size() != g->second.size())
        throw Error(ErrorCode::invalid, "bundle", experts[i].safetensors.string() + ": '" + module +
                                                      "' has vectors of another size than in " +
                                                      experts[0].safetensors.string());
      gate_keys.push_back(standardise(g->second));
      avg_keys.push_back(standardise(a->second));
    }
    if (!complete) {
      ++out.skipped_modules;
      continue;
    }
    LayerSeparation measured;
    measured.gate_cosine = mean_pair_cosine(gate_keys);
    measured.avg_act_cosine = mean_pair_cosine(avg_keys);
    int hits = 0;
    for (std::size_t i = 0; i < n; ++i) {
      measured.own_alignment += cosine(gate_keys[i], avg_keys[i]) / static_cast<double>(n);
      // The expert's typical input against every gate; ties go against the expert.
      const bool top = own_gate_wins(avg_keys[i], gate_keys, i);
      expert_hits[i] += top;
      hits += top;
    }
    measured.self_top1 = static_cast<double>(hits) / static_cast<double>(n);
    measured.centred_top1 = centred_self_top1(avg_keys, gate_keys);
    const std::string layer = layer_of(module);
    auto [it, fresh] = layer_at.try_emplace(layer, out.layers.size());
    if (fresh) out.layers.push_back(LayerSeparation{layer});
    add(out.layers[it->second], measured);
    add(out.overall, measured);
  }
  out.overall.layer = "all";
  if (out.overall.modules == 0)
    throw Error(ErrorCode::invalid, "bundle",
                "no module where every expert has both a gate and an average activation (" + experts[0].safetensors.string() +
                    " and " + std::to_string(n - 1) + " more)",
                "bundles from 'gaggle train-gate' carry both; imported or demo bundles may not");
  for (auto& l : out.layers) finish(l);
  finish(out.overall);
  for (std::size_t i = 0; i < n; ++i)  // every measured module has every expert
    out.expert_self_top1.push_back(static_cast<double>(expert_hits[i]) / out.overall.modules);
  return out;
}

}  // namespace gaggle::bundle
