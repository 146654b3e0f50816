#pragma once
// Sub-linear routing (issue #15, item 2): an inverted-file index over the prepared routing
// keys, so that a token scores a few clusters of experts instead of all N.
//
// Build (once, at assembly): spherical k-means of the keys [N, d_in] into C clusters
// (deterministic for a seed). Route: a token's query q = LN(u) / sqrt(d_in) scores the C
// centroids, the best P clusters are probed, and only their experts are scored exactly.
// The softmax runs over those candidates, so the top-k weights are the reference's
// p / (Σ_topk p + eps) with p normalised over the candidates: when every cluster is
// probed the candidates are all N experts and the routing is the exact one (same
// experts; weights equal up to float summation order). Per-token routers whose score is
// LN(u) · key (PHATGOOSE, average activation) only: Arrow's |u · key| is not an inner
// product a centroid bounds.
//
// Cost per token: C·d for the centroids plus (P / C)·N·d on average for the candidates,
// against N·d for exact scoring.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace gaggle::route {

namespace detail {
class PackedKeys;  // detail/packed_keys.h
}

struct IvfIndex {
  at::Tensor centroids;  // [C, d_in] float32
  at::Tensor members;    // [N] int64: expert ids grouped by cluster, ascending within one
  at::Tensor offsets;    // [C + 1] int64: cluster c holds members[offsets[c], offsets[c + 1])
  at::Tensor grouped_keys;  // keys.index_select(0, members): each cluster's keys contiguous (not stored; group_keys)
  // The centroids and each cluster's keys packed for our score kernel, where the CPU runs
  // one (group_keys; not stored); empty: the BLAS scores them.
  std::shared_ptr<const detail::PackedKeys> packed_centroids;
  std::vector<std::shared_ptr<const detail::PackedKeys>> packed_clusters;  // [C], null for an empty cluster
  // Σ_j grouped_keys[i][j] for each grouped key, beside the packed clusters: the kernel
  // scores a layer's raw token rows, and LN(u) · key = (u · key - mean(u) · Σ key) · rstd(u).
  std::vector<float> grouped_key_sum;

  std::int64_t clusters() const { return centroids.defined() ? centroids.size(0) : 0; }
};

// keys [N, d_in] float (prepared: phatgoose_keys / average_activation_keys); 1 <= clusters
// <= N. Throws Error{invalid}.
IvfIndex build_ivf_index(const at::Tensor& keys, std::int64_t clusters, int iterations = 20, std::uint64_t seed = 0);

// Checks shapes and ranges against N experts of width d_in (an index read from a file).
// Throws Error{invalid} naming `source`.
void check_ivf_index(const IvfIndex& index, std::int64_t experts, std::int64_t d_in, const std::string& source);
// Fills index.grouped_keys from the keys the index was built over (and, where the CPU runs
// detail/packed_keys.h, packs the centroids and each cluster's keys for its score kernel).
void group_keys(IvfIndex& index, const at::Tensor& keys);

struct IvfRouting {
  at::Tensor topk_index;   // [T, k] int64, descending score
  at::Tensor topk_weight;  // [T, k] float
  std::int64_t candidates = 0;  // experts scored, summed over tokens (N·T for exact)
  std::int64_t probed = 0;      // clusters probed, summed over tokens
};

// A token probes its best cluster and, of its next best up to `probe` in all, those whose
// centroid score is within `probe_margin` of the best one's (scores are the router's logits:
// a margin of m skips clusters whose centroid is e^m times less likely than the best one).
// Where the tokens of a batch sit near one cluster, most probe one; where two are close,
// both. Infinity (the default) probes `probe` clusters for every token.
inline constexpr double kNoProbeMargin = std::numeric_limits<double>::infinity();

// queries q [T, d_in] float (LN(u) / sqrt(d_in)), an index with grouped_keys; probe
// 1..C clusters per token (fewer with a finite probe_margin >= 0). Fewer than k candidates for a token (tiny clusters) is filled
// from the next-best clusters' order, never with an out-of-range id.
IvfRouting ivf_route(const at::Tensor& queries, const IvfIndex& index, std::int64_t probe, int top_k, double renorm_eps,
                     double probe_margin = kNoProbeMargin);

// The same routing straight from a layer's token rows u [T, d_in], as RoutedLinear runs
// it: q = LN(u) / sqrt(d_in) is never written. The centroids score the raw rows (turned
// into LN scores with each row's mean and 1 / std, as route/detail/fused_routing.h does),
// and a probed cluster's rows are normalised as they are gathered for its keys. The same
// experts and weights as ivf_route(LN(u) / sqrt(d_in)) up to float rounding.
IvfRouting ivf_route_tokens(const at::Tensor& u, const IvfIndex& index, std::int64_t probe, int top_k,
                            double renorm_eps, double layer_norm_eps, double probe_margin = kNoProbeMargin);

// The share of tokens whose approximate top-k set equals the exact one (order ignored).
double topk_recall(const at::Tensor& exact_index, const at::Tensor& approx_index);

}  // namespace gaggle::route
