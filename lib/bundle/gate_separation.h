#pragma once
// How far apart a pool's gates are (issue #13): PHATGOOSE routes a token to the experts
// whose standardised gate vectors it is most aligned with, so gates that all point the
// same way cannot route. Measured per layer, on the bundles alone (no model, no data):
//
//   gate cosine     mean over expert pairs of cos(LN(g_i), LN(g_j)) per module: 1 = the
//                   gates are the same direction, 0 = unrelated
//   avg-act cosine  the same for the experts' average activations (the Average
//                   activation router's keys): how alike the experts' tasks look to the model
//   own alignment   mean of cos(LN(g_i), LN(a_i)): how far each gate points along its own
//                   task's average activation (a gate that learnt "open on my task's
//                   tokens" is aligned; one that stayed near its random start is not)
//   self top-1      the share of (expert, module) pairs where the expert's own average
//                   activation (its task's typical input) scores its own gate highest of
//                   all gates (LN on both sides, as routing does); chance is 1/N
//   centred top-1   the same with the pool's shared input removed first: each expert's
//                   LN(a_i) minus the mean of LN(a_j) over the pool's experts. Every task's
//                   tokens carry that shared part, and it scores some gates higher than
//                   others for every token alike (a hub). Centred top-1 well above self
//                   top-1 says the gates do tell the tasks apart but the shared part
//                   hides it.
//
// LN is LayerNorm without affine (eps 1e-5), as route/phatgoose.h standardises keys.
// Modules where any expert lacks a gate or an average activation are skipped.
#include <filesystem>
#include <string>
#include <vector>

namespace gaggle::bundle {

struct GateSource {
  std::string label;                 // name@version
  std::filesystem::path safetensors; // the expert's adapter file (<module>.gate, <module>.avg_act)
};

struct LayerSeparation {
  std::string layer;  // the module path up to its block number: "encoder.block.3", "model.layers.0"
  int modules = 0;
  double gate_cosine = 0, avg_act_cosine = 0, own_alignment = 0, self_top1 = 0, centred_top1 = 0;
};

struct GateSeparation {
  std::vector<std::string> experts;
  std::vector<LayerSeparation> layers;  // in the order the modules first appear
  LayerSeparation overall;              // every module, weighted equally
  std::vector<double> expert_self_top1; // per expert, over all its modules
  int skipped_modules = 0;
};

// Throws Error{invalid} naming the file for fewer than two experts, a file that does not
// parse, gates of different sizes for one module, or no module every expert has both for.
GateSeparation measure_gate_separation(const std::vector<GateSource>& experts);

// "encoder.block.3.layer.0.SelfAttention.q" -> "encoder.block.3".
std::string layer_of(const std::string& module);

}  // namespace gaggle::bundle
