#include "route/ivf_index.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "io/error.h"
#include "route/detail/cblas.h"
#include "route/detail/fused_routing.h"
#include "route/detail/topk.h"

namespace gaggle::route {
namespace {

constexpr const char* kRoom = "route";

void require(bool ok, const std::string& message) {
  if (!ok) throw_error(ErrorCode::invalid, kRoom, "ivf index: " + message);
}

}  // namespace

IvfIndex build_ivf_index(const at::Tensor& keys, std::int64_t clusters, int iterations, std::uint64_t seed) {
  require(keys.defined() && keys.dim() == 2 && keys.size(0) >= 1, "keys must be [N, d_in] with N >= 1");
  const std::int64_t n = keys.size(0);
  require(clusters >= 1 && clusters <= n,
          "--clusters " + std::to_string(clusters) + " must be between 1 and the " + std::to_string(n) + " experts");
  at::NoGradGuard no_grad;
  auto x = keys.to(at::kDouble).contiguous();
  auto unit = x / x.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
  // Spherical k-means: the keys' directions; starting centroids a seeded sample of keys.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto start = at::randperm(n, gen, at::TensorOptions().dtype(at::kLong)).narrow(0, 0, clusters);
  start = std::get<0>(start.sort());
  auto centroids = unit.index_select(0, start);
  at::Tensor assign;
  for (int it = 0; it <= iterations; ++it) {
    assign = at::mm(unit, centroids.t()).argmax(1);
    if (it == iterations) break;
    auto sums = at::zeros_like(centroids).index_add(0, assign, unit);
    auto counts = at::bincount(assign, {}, clusters);
    // An empty cluster keeps its centroid (it may win tokens at routing time; it holds no expert).
    auto empty = (counts == 0).unsqueeze(1);
    auto next = sums / sums.norm(2, {1}, true).clamp_min(1e-12);
    centroids = at::where(empty, centroids, next);
  }
  IvfIndex index;
  auto order = at::argsort(assign * n + at::arange(n, assign.options()));  // by cluster, then expert id
  index.members = order.contiguous();
  auto counts = at::bincount(assign, {}, clusters);
  index.offsets = at::cat({at::zeros({1}, counts.options()), counts.cumsum(0)}).contiguous();
  // Centroids on the keys' scale (the mean key norm), so that query · centroid reads like a score.
  index.centroids = (centroids * x.norm(2, {1}).mean()).to(at::kFloat).contiguous();
  group_keys(index, keys);
  return index;
}

void check_ivf_index(const IvfIndex& index, std::int64_t experts, std::int64_t d_in, const std::string& source) {
  auto fail = [&](const std::string& what) {
    throw_error(ErrorCode::invalid, kRoom, source + ": ivf index: " + what, "assemble the model again");
  };
  if (!index.centroids.defined() || index.centroids.dim() != 2 || index.centroids.size(1) != d_in ||
      index.centroids.size(0) < 1)
    fail("centroids must be [C, " + std::to_string(d_in) + "]");
  const std::int64_t c = index.centroids.size(0);
  if (!index.members.defined() || index.members.dim() != 1 || index.members.size(0) != experts ||
      index.members.scalar_type() != at::kLong)
    fail("members must be int64 [" + std::to_string(experts) + "]");
  if (!index.offsets.defined() || index.offsets.dim() != 1 || index.offsets.size(0) != c + 1 ||
      index.offsets.scalar_type() != at::kLong)
    fail("offsets must be int64 [" + std::to_string(c + 1) + "]");
  auto m = index.members.cpu().contiguous();
  auto o = index.offsets.cpu().contiguous();
  const std::int64_t* mp = m.data_ptr<std::int64_t>();
  const std::int64_t* op = o.data_ptr<std::int64_t>();
  if (op[0] != 0 || op[c] != experts) fail("offsets must run from 0 to the number of experts");
  for (std::int64_t i = 0; i < c; ++i)
    if (op[i + 1] < op[i]) fail("offsets must not decrease");
  std::vector<char> seen(static_cast<std::size_t>(experts), 0);
  for (std::int64_t i = 0; i < experts; ++i) {
    if (mp[i] < 0 || mp[i] >= experts || seen[mp[i]]) fail("members must hold every expert exactly once");
    seen[mp[i]] = 1;
  }
}

void group_keys(IvfIndex& index, const at::Tensor& keys) {
  index.grouped_keys = keys.index_select(0, index.members.to(keys.device())).to(at::kFloat).contiguous();
}

IvfRouting ivf_route(const at::Tensor& queries, const IvfIndex& index, std::int64_t probe, int top_k,
                     double renorm_eps) {
  require(index.grouped_keys.defined(), "keys are not grouped (group_keys)");
  const std::int64_t c_count = index.clusters(), n = index.members.size(0);
  require(probe >= 1 && probe <= c_count,
          "--probe " + std::to_string(probe) + " must be between 1 and the " + std::to_string(c_count) + " clusters");
  require(top_k >= 1 && top_k <= n, "top-k must be between 1 and the experts");
  at::NoGradGuard no_grad;
  auto q = queries.to(at::kFloat).contiguous();
  const std::int64_t t_count = q.size(0);
  auto offsets = index.offsets.cpu().contiguous();
  const std::int64_t* off = offsets.data_ptr<std::int64_t>();
  // The best clusters of each token, in order: a partial sort of a few more than `probe`
  // (all of them only when some token's best ones hold fewer than k experts).
  auto centroid_scores = at::mm(q, index.centroids.t()).contiguous();
  std::int64_t ranked = std::min(c_count, probe + 2);
  at::Tensor order = at::empty({t_count, ranked}, at::TensorOptions().dtype(at::kLong));
  {
    const float* cs = centroid_scores.data_ptr<float>();
    std::int64_t* ord = order.data_ptr<std::int64_t>();
    at::parallel_for(0, t_count, 256, [&](std::int64_t begin, std::int64_t end) {
      std::vector<float> best(ranked);
      for (std::int64_t t = begin; t < end; ++t) {
        std::int64_t* row = ord + t * ranked;
        detail::topk_row(cs + t * c_count, c_count, static_cast<int>(ranked), best.data(), row);
        // A NaN token ranks no cluster: it takes the first ones (its weights come out NaN).
        detail::fill_unfilled_slots(cs + t * c_count, static_cast<int>(ranked), best.data(), row);
      }
    });
  }

  // Each token's clusters: the best `probe`, and more while they hold fewer than k experts.
  std::vector<std::vector<std::int64_t>> tokens_of(c_count), slot_of(c_count);  // per cluster
  std::vector<std::int64_t> width(t_count, 0);
  IvfRouting out;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const std::int64_t* ord = order.data_ptr<std::int64_t>();
    bool short_of_k = false;
    for (std::int64_t t = 0; t < t_count && !short_of_k; ++t) {
      for (std::int64_t j = 0; j < ranked && (j < probe || width[t] < top_k); ++j) {
        const std::int64_t c = ord[t * ranked + j], size = off[c + 1] - off[c];
        if (size == 0) continue;
        tokens_of[c].push_back(t);
        slot_of[c].push_back(width[t]);
        width[t] += size;
      }
      short_of_k = width[t] < top_k && ranked < c_count;
    }
    if (!short_of_k) break;
    // Rare (clusters of fewer than k experts): rank every cluster and start again.
    for (auto& v : tokens_of) v.clear();
    for (auto& v : slot_of) v.clear();
    std::fill(width.begin(), width.end(), 0);
    ranked = c_count;
    order = centroid_scores.argsort(1, /*descending=*/true).contiguous();
  }
  for (std::int64_t t = 0; t < t_count; ++t) out.candidates += width[t];
  const std::int64_t w = *std::max_element(width.begin(), width.end());
  // Row t holds its width[t] candidates' scores and expert ids; the rest is never read.
  // Kept across calls on this thread: a fresh buffer would fault in its pages every time.
  thread_local std::vector<float> scores;
  thread_local std::vector<std::int64_t> ids;
  if (scores.size() < static_cast<std::size_t>(t_count * w)) scores.resize(t_count * w), ids.resize(t_count * w);
  float* sp = scores.data();  // the workers below have their own `scores` and `ids`
  std::int64_t* ip = ids.data();
  auto members = index.members.cpu().contiguous();
  const std::int64_t* mp = members.data_ptr<std::int64_t>();
  const auto keys = index.grouped_keys.to(at::kFloat).contiguous();
  const float* key_data = keys.data_ptr<float>();
  const float* q_data = q.data_ptr<float>();
  const std::int64_t d = q.size(1);
  const detail::SgemmFn sgemm = detail::row_major_sgemm();
  at::parallel_for(0, c_count, 1, [&](std::int64_t begin, std::int64_t end) {
    detail::SingleThreadedBlas one_thread;
    thread_local std::vector<float> gathered, product;  // kept across calls: no page faults
    for (std::int64_t c = begin; c < end; ++c) {
      if (tokens_of[c].empty()) continue;
      const std::int64_t size = off[c + 1] - off[c], rows = static_cast<std::int64_t>(tokens_of[c].size());
      const float* src = nullptr;
      at::Tensor s;
      if (sgemm) {  // the cluster's tokens gathered, scored against its keys in one small GEMM
        if (gathered.size() < static_cast<std::size_t>(rows * d)) gathered.resize(rows * d);
        if (product.size() < static_cast<std::size_t>(rows * size)) product.resize(rows * size);
        for (std::int64_t i = 0; i < rows; ++i)
          std::memcpy(gathered.data() + i * d, q_data + tokens_of[c][i] * d, d * sizeof(float));
        sgemm(false, true, rows, size, d, 1.0f, gathered.data(), d, key_data + off[c] * d, d, 0.0f, product.data(),
              size);
        src = product.data();
      } else {
        auto tok = at::from_blob(tokens_of[c].data(), {rows}, at::TensorOptions().dtype(at::kLong));
        s = at::mm(q.index_select(0, tok), keys.narrow(0, off[c], size).t()).contiguous();
        src = s.data_ptr<float>();
      }
      for (std::int64_t i = 0; i < rows; ++i) {
        const std::int64_t t = tokens_of[c][i], at_slot = slot_of[c][i];
        std::memcpy(sp + t * w + at_slot, src + i * size, size * sizeof(float));
        std::memcpy(ip + t * w + at_slot, mp + off[c], size * sizeof(std::int64_t));
      }
    }
  });
  // The softmax over each token's candidates, its top-k and the reference's weights, in
  // one pass per row (detail/fused_routing.h).
  out.topk_index = at::empty({t_count, top_k}, at::TensorOptions().dtype(at::kLong));
  out.topk_weight = at::empty({t_count, top_k}, q.options());
  std::int64_t* top_index = out.topk_index.data_ptr<std::int64_t>();
  float* top_weight = out.topk_weight.data_ptr<float>();
  at::parallel_for(0, t_count, 256, [&](std::int64_t begin, std::int64_t end) {
    detail::select_top_k_of_scores(sp + begin * w, w, width.data() + begin, end - begin, top_k, renorm_eps,
                                   top_index + begin * top_k, top_weight + begin * top_k);
    for (std::int64_t t = begin; t < end; ++t)
      for (int j = 0; j < top_k; ++j) top_index[t * top_k + j] = ip[t * w + top_index[t * top_k + j]];
  });
  return out;
}

double topk_recall(const at::Tensor& exact_index, const at::Tensor& approx_index) {
  require(exact_index.sizes() == approx_index.sizes() && exact_index.dim() == 2, "recall needs two [T, k] index tensors");
  if (exact_index.size(0) == 0) return 1.0;
  auto a = std::get<0>(exact_index.cpu().sort(1));
  auto b = std::get<0>(approx_index.cpu().sort(1));
  return (a == b).all(1).to(at::kDouble).mean().item<double>();
}

}  // namespace gaggle::route
