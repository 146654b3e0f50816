#include "route/ivf_index.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "io/error.h"
#include "route/detail/cblas.h"
#include "route/detail/fused_routing.h"
#include "route/detail/packed_keys.h"
#include "route/detail/room.h"
#include "route/detail/topk.h"

namespace gaggle::route {
namespace {

void require_ivf(bool ok, const std::string& message) {
  if (!ok) throw_error(ErrorCode::invalid, kRoom, "ivf index: " + message);
}

// rows [n, d] · vectors [m, d]^T -> [n, m], for a few vectors: where the CPU runs the
// packed score kernel it reads each row once where it lies, as the router does. The
// BLAS packs all n rows again on every call, which for the few vectors of a seeding step
// cost more than the products (0.4 of the 0.6 s an index over 10,000 keys took).
at::Tensor products_with(const at::Tensor& rows, const at::Tensor& vectors) {
  if (!detail::packed_keys_supported() || !rows.device().is_cpu() || rows.scalar_type() != at::kFloat)
    return at::mm(rows, vectors.t());
  const auto r = rows.contiguous(), v = vectors.contiguous();
  const std::int64_t n = r.size(0), m = v.size(0), d = r.size(1);
  const detail::PackedKeys packed(v.data_ptr<float>(), m, d);
  auto out = at::empty({n, m}, r.options());
  const float* x = r.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, n, 512, [&](std::int64_t begin, std::int64_t end) {
    packed.scores(x + begin * d, end - begin, o + begin * m, m);
  });
  return out;
}

}  // namespace

IvfIndex build_ivf_index(const at::Tensor& keys, std::int64_t clusters, int iterations, std::uint64_t seed) {
  require_ivf(keys.defined() && keys.dim() == 2 && keys.size(0) >= 1, "keys must be [N, d_in] with N >= 1");
  const std::int64_t n = keys.size(0);
  require_ivf(clusters >= 1 && clusters <= n, "--clusters " + std::to_string(clusters) + " must be between 1 and the " +
                                                  std::to_string(n) + " experts");
  at::NoGradGuard no_grad;
  // Float, as the keys are: the products below read `unit` once per seed and per
  // iteration, and in double they took twice the time and bytes. The sums that choose
  // between candidate seeds are still taken in double.
  auto x = keys.to(at::kFloat).contiguous();
  auto unit = x / x.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
  // Spherical k-means over the keys' directions, seeded by greedy k-means++: each next
  // starting centroid is, of 2 + ln C keys drawn with probability proportional to their
  // distance (1 - cos) to the nearest seed so far, the one that leaves the smallest sum.
  // Seeds drawn uniformly at random put two in one group of related experts and none in
  // another as often as not, and Lloyd's iterations rarely undo that: on 100 synthetic
  // families of 100 experts each, 10-15 % of a cluster's experts were of another family
  // (docs/performance.md).
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<std::int64_t> seeds{at::randint(n, {1}, gen, at::TensorOptions().dtype(at::kLong)).item<std::int64_t>()};
  auto nearest = (1.0 - at::mv(unit, unit[seeds[0]])).clamp_min(0.0);  // 1 - cos to the nearest seed
  const std::int64_t trials = 2 + static_cast<std::int64_t>(std::log(static_cast<double>(clusters)));
  while (static_cast<std::int64_t>(seeds.size()) < clusters) {
    std::int64_t next = 0;
    at::Tensor next_nearest;
    const double total = nearest.sum(at::kDouble).item<double>();
    if (total > 0) {
      // Greedy: of a few keys drawn so, the one that leaves the smallest sum of distances.
      auto drawn = at::multinomial(nearest, std::min<std::int64_t>(trials, (nearest > 0).sum().item<std::int64_t>()),
                                   /*replacement=*/false, gen);
      auto to_drawn = (1.0 - products_with(unit, unit.index_select(0, drawn))).clamp_min(0.0);  // [n, trials]
      auto after = at::minimum(nearest.unsqueeze(1), to_drawn);
      const std::int64_t best = after.sum(0, /*keepdim=*/false, at::kDouble).argmin().item<std::int64_t>();
      next = drawn[best].item<std::int64_t>();
      next_nearest = after.select(1, best).contiguous();
    } else {  // every key sits on a seed already (repeated keys): the first not yet drawn
      std::vector<char> taken(n, 0);
      for (const std::int64_t s : seeds) taken[s] = 1;
      while (taken[next]) ++next;
      next_nearest = nearest.clone();
    }
    seeds.push_back(next);
    nearest = next_nearest;
    nearest[next] = 0.0;
  }
  std::sort(seeds.begin(), seeds.end());
  auto centroids = unit.index_select(0, at::tensor(seeds, at::TensorOptions().dtype(at::kLong)));
  at::Tensor assign;
  for (int it = 0; it <= iterations; ++it) {
    at::Tensor previous = assign;
    assign = at::mm(unit, centroids.t()).argmax(1);
    // Converged: the same assignment gives the same centroids again, so every later
    // iteration would repeat this one and the result is what `iterations` would give.
    if (it == iterations || (previous.defined() && at::equal(previous, assign))) break;
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
  index.packed_centroids.reset();
  index.packed_clusters.clear();
  index.grouped_key_sum.clear();
  if (!detail::packed_keys_supported() || !index.grouped_keys.device().is_cpu()) return;
  // The keys never change while the index routes: packed once here, not on every call as
  // the BLAS packs them (detail/packed_keys.h).
  const auto centroids = index.centroids.to(at::kFloat).contiguous();
  const std::int64_t d = centroids.size(1);
  index.packed_centroids = std::make_shared<const detail::PackedKeys>(centroids.data_ptr<float>(), centroids.size(0), d);
  const auto offsets = index.offsets.cpu().contiguous();
  const std::int64_t* off = offsets.data_ptr<std::int64_t>();
  const float* key_data = index.grouped_keys.data_ptr<float>();
  index.grouped_key_sum.resize(index.grouped_keys.size(0));
  detail::key_sums(key_data, index.grouped_keys.size(0), d, index.grouped_key_sum.data());
  index.packed_clusters.resize(index.clusters());
  for (std::int64_t c = 0; c < index.clusters(); ++c)
    if (off[c + 1] > off[c])
      index.packed_clusters[c] = std::make_shared<const detail::PackedKeys>(key_data + off[c] * d, off[c + 1] - off[c], d);
}

namespace {

// How the rows the router is given become queries: q = (x - shift) · factor per row.
// Prepared queries pass unchanged (no shift, factor 1); a layer's token rows become
// LN(u) / sqrt(d_in) with shift = mean(u) and factor = rstd(u) / sqrt(d_in).
struct QueryRows {
  const float* x = nullptr;  // [T, d] row-major
  std::int64_t rows = 0, d = 0;
  std::vector<float> shift, factor;  // [T] each; empty for prepared queries

  bool prepared() const { return shift.empty(); }
  // Query row t into out[0, d).
  void write(std::int64_t t, float* out) const {
    const float* src = x + t * d;
    if (prepared()) {
      std::memcpy(out, src, d * sizeof(float));
      return;
    }
    detail::normalise_row(src, d, shift[t], factor[t], out);
  }
  // The queries' scores from raw dot products with keys whose sums are key_sum:
  // LN(u) · c = (u · c - mean(u) · Σ c) · rstd(u), exact in real arithmetic.
  void transform_scores(std::int64_t t, float* raw, std::int64_t n, const float* key_sum) const {
    if (prepared()) return;
    detail::layer_norm_scores_in_place(raw, n, shift[t], factor[t], key_sum);
  }
};

// The rows' scores against the centroids, [T, C], in one multi-threaded GEMM on the rows
// as given (LN(u) is never written for the centroids either).
at::Tensor centroid_scores_of(const at::Tensor& x, const QueryRows& rows, const at::Tensor& centroids,
                              const std::vector<float>& centroid_sum) {
  auto scores = at::mm(x, centroids.t()).contiguous();
  const std::int64_t c_count = centroids.size(0);
  float* s = scores.data_ptr<float>();
  at::parallel_for(0, rows.rows, 256, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t t = begin; t < end; ++t) rows.transform_scores(t, s + t * c_count, c_count, centroid_sum.data());
  });
  return scores;
}

// Each token's `ranked` best clusters, in order, into order [T, ranked], and their scores
// into order_score [T, ranked] (what a probe margin compares). Where a BLAS is loaded, per
// block of tokens: the block's centroid scores (single-threaded GEMM; the centroids stay in
// cache), transformed and ranked while they are in cache, so the [T, C] scores are never
// written.
void rank_clusters(const at::Tensor& x, const QueryRows& rows, const at::Tensor& centroids,
                   const detail::PackedKeys* packed, const std::vector<float>& centroid_sum, std::int64_t ranked,
                   std::int64_t* order, float* order_score) {
  constexpr std::int64_t kBlock = 256;
  const std::int64_t c_count = centroids.size(0), d = rows.d;
  const detail::SgemmFn sgemm = detail::row_major_sgemm();
  const bool blocked = packed || sgemm;
  at::Tensor all_scores;
  if (!blocked) all_scores = centroid_scores_of(x, rows, centroids, centroid_sum);
  const float* centroid_data = centroids.data_ptr<float>();
  at::parallel_for(0, rows.rows, kBlock, [&](std::int64_t begin, std::int64_t end) {
    detail::SingleThreadedBlas one_thread;
    std::vector<float> block(blocked ? kBlock * c_count : 0);
    for (std::int64_t lo = begin; lo < end; lo += kBlock) {
      const std::int64_t count = std::min(kBlock, end - lo);
      const float* scores = nullptr;
      if (blocked) {
        if (packed)
          packed->scores(rows.x + lo * d, count, block.data(), c_count);
        else
          sgemm(false, true, count, c_count, d, 1.0f, rows.x + lo * d, d, centroid_data, d, 0.0f, block.data(),
                c_count);
        for (std::int64_t i = 0; i < count; ++i)
          rows.transform_scores(lo + i, block.data() + i * c_count, c_count, centroid_sum.data());
        scores = block.data();
      } else {
        scores = all_scores.data_ptr<float>() + lo * c_count;
      }
      for (std::int64_t i = 0; i < count; ++i) {
        std::int64_t* row = order + (lo + i) * ranked;
        float* best = order_score + (lo + i) * ranked;
        detail::topk_row(scores + i * c_count, c_count, static_cast<int>(ranked), best, row);
        // A NaN token ranks no cluster: it takes the first ones (its weights come out NaN).
        detail::fill_unfilled_slots(scores + i * c_count, static_cast<int>(ranked), best, row);
      }
    }
  });
}

IvfRouting route_query_rows(const at::Tensor& x, const QueryRows& rows, const IvfIndex& index, std::int64_t probe,
                            int top_k, double renorm_eps, double probe_margin) {
  require_ivf(index.grouped_keys.defined(), "keys are not grouped (group_keys)");
  const std::int64_t c_count = index.clusters(), n = index.members.size(0);
  require_ivf(probe >= 1 && probe <= c_count, "--probe " + std::to_string(probe) + " must be between 1 and the " +
                                                  std::to_string(c_count) + " clusters");
  require_ivf(probe_margin >= 0, "the probe margin must be >= 0 (infinity: probe --probe clusters for every token)");
  require_ivf(top_k >= 1 && top_k <= n, "top-k must be between 1 and the experts");
  const std::int64_t t_count = rows.rows, d = rows.d;
  auto offsets = index.offsets.cpu().contiguous();
  const std::int64_t* off = offsets.data_ptr<std::int64_t>();
  const auto centroids = index.centroids.to(at::kFloat).contiguous();
  std::vector<float> centroid_sum(c_count, 0.0f);
  if (!rows.prepared()) detail::key_sums(centroids.data_ptr<float>(), c_count, d, centroid_sum.data());
  // The best clusters of each token, in order: a partial sort of a few more than `probe`
  // (all of them only when some token's best ones hold fewer than k experts).
  std::int64_t ranked = std::min(c_count, probe + 2);
  at::Tensor order = at::empty({t_count, ranked}, at::TensorOptions().dtype(at::kLong));
  at::Tensor order_score = at::empty({t_count, ranked}, at::TensorOptions().dtype(at::kFloat));
  // Packed by group_keys where the CPU runs the score kernel (the centroids and the clusters together).
  const bool packed = !index.packed_clusters.empty();
  rank_clusters(x, rows, centroids, index.packed_centroids.get(), centroid_sum, ranked,
                order.data_ptr<std::int64_t>(), order_score.data_ptr<float>());

  // Each token's clusters: the best `probe`, and more while they hold fewer than k experts.
  // probed[t · ranked + j] is the j-th cluster token t scores, in the order its
  // candidates' scores are laid out.
  std::vector<std::vector<std::int64_t>> tokens_of(c_count), slot_of(c_count);  // per cluster
  std::vector<std::int64_t> width(t_count, 0), probed_count(t_count, 0), probed;
  IvfRouting out;
  for (int attempt = 0; attempt < 2; ++attempt) {
    probed.assign(t_count * ranked, -1);
    const std::int64_t* ord = order.data_ptr<std::int64_t>();
    const float* ord_score = order_score.data_ptr<float>();
    bool short_of_k = false;
    for (std::int64_t t = 0; t < t_count && !short_of_k; ++t) {
      // Clusters scoring below this are not probed once the token has k candidates
      // (-inf with no margin; NaN scores compare false and probe as without one).
      const double lowest = static_cast<double>(ord_score[t * ranked]) - probe_margin;
      for (std::int64_t j = 0; j < ranked && (j < probe || width[t] < top_k); ++j) {
        if (width[t] >= top_k && static_cast<double>(ord_score[t * ranked + j]) < lowest) break;
        const std::int64_t c = ord[t * ranked + j], size = off[c + 1] - off[c];
        if (size == 0) continue;
        tokens_of[c].push_back(t);
        slot_of[c].push_back(width[t]);
        probed[t * ranked + probed_count[t]++] = c;
        width[t] += size;
      }
      short_of_k = width[t] < top_k && ranked < c_count;
    }
    if (!short_of_k) break;
    // Rare (clusters of fewer than k experts): rank every cluster and start again.
    for (auto& v : tokens_of) v.clear();
    for (auto& v : slot_of) v.clear();
    std::fill(width.begin(), width.end(), 0);
    std::fill(probed_count.begin(), probed_count.end(), 0);
    ranked = c_count;
    auto sorted = centroid_scores_of(x, rows, centroids, centroid_sum).sort(1, /*descending=*/true);
    order_score = std::get<0>(sorted).contiguous();
    order = std::get<1>(sorted).contiguous();
  }
  for (std::int64_t t = 0; t < t_count; ++t) out.candidates += width[t], out.probed += probed_count[t];
  const std::int64_t w = *std::max_element(width.begin(), width.end());
  // Row t holds its width[t] candidates' scores; the rest is never read. Kept across calls
  // on this thread: a fresh buffer would fault in its pages every time.
  thread_local std::vector<float> scores;
  if (scores.size() < static_cast<std::size_t>(t_count * w)) scores.resize(t_count * w);
  float* sp = scores.data();  // the workers below have their own `scores`
  auto members = index.members.cpu().contiguous();
  const std::int64_t* mp = members.data_ptr<std::int64_t>();
  const auto keys = index.grouped_keys.to(at::kFloat).contiguous();
  const float* key_data = keys.data_ptr<float>();
  const detail::SgemmFn sgemm = detail::row_major_sgemm();
  // The probed clusters, largest work (tokens × keys) first, handed out one at a time:
  // tokens crowd into the few clusters near their tasks, so equal ranges of cluster ids
  // would leave one thread with most of the work.
  std::vector<std::int64_t> work_order;
  for (std::int64_t c = 0; c < c_count; ++c)
    if (!tokens_of[c].empty()) work_order.push_back(c);
  auto work = [&](std::int64_t c) { return static_cast<std::int64_t>(tokens_of[c].size()) * (off[c + 1] - off[c]); };
  std::stable_sort(work_order.begin(), work_order.end(), [&](std::int64_t a, std::int64_t b) { return work(a) > work(b); });
  std::atomic<std::size_t> next_cluster{0};
  const float* key_sum = index.grouped_key_sum.data();
  at::parallel_for(0, at::get_num_threads(), 1, [&](std::int64_t, std::int64_t) {
    detail::SingleThreadedBlas one_thread;
    thread_local std::vector<float> gathered, product;  // kept across calls: no page faults
    thread_local std::vector<const float*> in;
    thread_local std::vector<float*> out;
    for (std::size_t next = next_cluster++; next < work_order.size(); next = next_cluster++) {
      const std::int64_t c = work_order[next];
      const std::int64_t size = off[c + 1] - off[c], count = static_cast<std::int64_t>(tokens_of[c].size());
      const std::vector<std::int64_t>& tokens = tokens_of[c];
      if (packed) {
        // The raw rows read where they lie, their products written straight to each
        // token's candidate scores, then turned into LN scores in place.
        in.resize(count);
        out.resize(count);
        for (std::int64_t i = 0; i < count; ++i) {
          in[i] = rows.x + tokens[i] * d;
          out[i] = sp + tokens[i] * w + slot_of[c][i];
        }
        index.packed_clusters[c]->scores(in.data(), count, out.data());
        for (std::int64_t i = 0; i < count; ++i) rows.transform_scores(tokens[i], out[i], size, key_sum + off[c]);
        continue;
      }
      // The cluster's queries, made as they are gathered, scored against its keys in one
      // small GEMM.
      if (gathered.size() < static_cast<std::size_t>(count * d)) gathered.resize(count * d);
      if (product.size() < static_cast<std::size_t>(count * size)) product.resize(count * size);
      for (std::int64_t i = 0; i < count; ++i) rows.write(tokens[i], gathered.data() + i * d);
      const float* key_rows = key_data + off[c] * d;
      if (sgemm) {
        sgemm(false, true, count, size, d, 1.0f, gathered.data(), d, key_rows, d, 0.0f, product.data(), size);
      } else {
        auto q = at::from_blob(gathered.data(), {count, d}, at::TensorOptions().dtype(at::kFloat));
        auto k = at::from_blob(const_cast<float*>(key_rows), {size, d}, at::TensorOptions().dtype(at::kFloat));
        auto product_rows = at::from_blob(product.data(), {count, size}, at::TensorOptions().dtype(at::kFloat));
        at::mm_out(product_rows, q, k.t());
      }
      for (std::int64_t i = 0; i < count; ++i)
        std::memcpy(sp + tokens[i] * w + slot_of[c][i], product.data() + i * size, size * sizeof(float));
    }
  });
  // The softmax over each token's candidates, its top-k and the reference's weights, in
  // one pass per row (detail/fused_routing.h); then each chosen position back to its
  // expert through the clusters the token probed.
  out.topk_index = at::empty({t_count, top_k}, at::TensorOptions().dtype(at::kLong));
  out.topk_weight = at::empty({t_count, top_k}, at::TensorOptions().dtype(at::kFloat));
  std::int64_t* top_index = out.topk_index.data_ptr<std::int64_t>();
  float* top_weight = out.topk_weight.data_ptr<float>();
  at::parallel_for(0, t_count, 256, [&](std::int64_t begin, std::int64_t end) {
    detail::select_top_k_of_scores(sp + begin * w, w, width.data() + begin, end - begin, top_k, renorm_eps,
                                   top_index + begin * top_k, top_weight + begin * top_k);
    for (std::int64_t t = begin; t < end; ++t)
      for (int j = 0; j < top_k; ++j) {
        std::int64_t position = top_index[t * top_k + j], i = 0;
        for (;; ++i) {
          const std::int64_t c = probed[t * ranked + i], size = off[c + 1] - off[c];
          if (position < size || i + 1 == probed_count[t]) break;
          position -= size;
        }
        const std::int64_t c = probed[t * ranked + i];
        top_index[t * top_k + j] = mp[off[c] + position];
      }
  });
  return out;
}

}  // namespace

IvfRouting ivf_route(const at::Tensor& queries, const IvfIndex& index, std::int64_t probe, int top_k,
                     double renorm_eps, double probe_margin) {
  at::NoGradGuard no_grad;
  auto q = queries.to(at::kFloat).contiguous();
  QueryRows rows;
  rows.x = q.data_ptr<float>(), rows.rows = q.size(0), rows.d = q.size(1);
  return route_query_rows(q, rows, index, probe, top_k, renorm_eps, probe_margin);
}

IvfRouting ivf_route_tokens(const at::Tensor& u, const IvfIndex& index, std::int64_t probe, int top_k,
                            double renorm_eps, double layer_norm_eps, double probe_margin) {
  at::NoGradGuard no_grad;
  auto x = u.to(at::kFloat).contiguous();
  QueryRows rows;
  rows.x = x.data_ptr<float>(), rows.rows = x.size(0), rows.d = x.size(1);
  rows.shift.resize(rows.rows);
  rows.factor.resize(rows.rows);
  const double scale = 1.0 / std::sqrt(static_cast<double>(rows.d));
  at::parallel_for(0, rows.rows, 256, [&](std::int64_t begin, std::int64_t end) {
    detail::row_moments(rows.x + begin * rows.d, end - begin, rows.d, layer_norm_eps, rows.shift.data() + begin,
                        rows.factor.data() + begin);
    for (std::int64_t t = begin; t < end; ++t) rows.factor[t] = static_cast<float>(rows.factor[t] * scale);
  });
  return route_query_rows(x, rows, index, probe, top_k, renorm_eps, probe_margin);
}

double topk_recall(const at::Tensor& exact_index, const at::Tensor& approx_index) {
  require_ivf(exact_index.sizes() == approx_index.sizes() && exact_index.dim() == 2,
              "recall needs two [T, k] index tensors");
  if (exact_index.size(0) == 0) return 1.0;
  auto a = std::get<0>(exact_index.cpu().sort(1));
  auto b = std::get<0>(approx_index.cpu().sort(1));
  return (a == b).all(1).to(at::kDouble).mean().item<double>();
}

}  // namespace gaggle::route
