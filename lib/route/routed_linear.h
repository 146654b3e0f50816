#pragma once
// The routed linear layer (design.md §5): the hot path of a routed model.
//
// For T tokens u [T, d_in] and N experts with LoRA factors A [N, r, d_in], B [N, d_out, r]
// and routing keys [N, d_in] (already prepared by a router: phatgoose.h, arrow.h, ...):
//
//   scores      = prep(u) · keysᵀ                       one [T, d_in] x [d_in, N] GEMM
//   p           = softmax(scores) over all N experts
//   topk_index  = the k largest p per token (descending)
//   topk_weight = p_topk / (Σ_topk p + renorm_eps)      the reference's renormalisation
//   y           = W u + Σ_topk w · B_e A_e u · lora_scale
//
// prep(u) = LN(u) / sqrt(d_in) (LayerNorm without affine, eps 1e-5) for PHATGOOSE and
// average activation; u / (temperature · sqrt(d_in)) followed by |·| for Arrow. On CPU
// float32 without autograd the decision takes one pass over the tokens and writes neither
// LN(u) nor p (routed_linear_route.cpp, detail/fused_routing.h); where the CPU has
// AVX2 or AVX-512 the keys are packed once for a score kernel of their own
// (detail/packed_keys.h).
//
// The LoRA products are computed for the selected (token, expert) slots only, grouped by
// expert: one counting sort of the T·k slots, then each selected expert's update on its
// tokens. Experts that got no token are never read; there is no loop over all N experts'
// tensors and no dense [T, N, r] product. On CPU float32 without autograd the grouping runs
// in a dedicated kernel with deterministic output: one pass per token row where AVX2 and
// the shapes allow (detail/lora_rows.h), otherwise a gather and two small BLAS GEMMs per
// chunk of rows. Factors in bfloat16 (gaggle assemble --factor-dtype bf16) halve the bytes
// a large pool streams; the one-pass kernel widens them as it loads them. Elsewhere (CUDA,
// other dtypes, autograd) the gather-and-GEMM algorithm runs as LibTorch ops: off the CPU
// as a few batched products over buckets of experts (detail/bucketed_update.h), so that
// the kernels launched do not grow with N; under autograd two products per chosen expert.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "model/linear_hook.h"
#include "route/ivf_index.h"

namespace gaggle::route {

namespace detail {
class PackedKeys;  // detail/packed_keys.h
}

enum class ScoreKind {
  layer_norm_dot,  // PHATGOOSE, average activation: LN(u) · key / sqrt(d_in)
  abs_dot,         // Arrow: |u · key| / temperature / sqrt(d_in)
};

struct RoutedLinearOptions {
  int top_k = 2;
  double lora_scale = 0;  // alpha / r; 0 means 1 / r (alpha = 1, design.md §2)
  ScoreKind score = ScoreKind::layer_norm_dot;
  double layer_norm_eps = 1e-5;
  double arrow_temperature = 10.0;
  double renorm_eps = 1e-6;
  bool force_generic = false;  // tests and benchmarks: run the LibTorch-ops path on CPU too
  // The LibTorch-ops update (CUDA, other dtypes, autograd, force_generic): per_expert, two
  // products per chosen expert; bucketed, a few batched products whatever N
  // (detail/bucketed_update.h; not under autograd); automatic, bucketed off the CPU and
  // per expert on it.
  enum class GenericUpdate { automatic, per_expert, bucketed };
  GenericUpdate generic_update = GenericUpdate::automatic;
  // forward() in one pass over the tokens where the CPU kernel runs (routed_linear_forward.cpp);
  // false: W u over the whole batch, then route and update (benchmarks compare the two).
  bool one_pass_forward = true;
};

// The routing decision for T tokens.
struct Routing {
  at::Tensor scores;       // [T, N] float
  at::Tensor topk_index;   // [T, k] int64, in descending score order
  at::Tensor topk_weight;  // [T, k] float
};

class RoutedLinear : public model::LinearAdapter {
 public:
  // Shares (does not copy) A, B and keys: they may be memory-mapped and read-only; the
  // layer never writes to them. Throws Error{invalid} on inconsistent shapes, k < 1 or
  // k > N, or tensors on different devices.
  RoutedLinear(at::Tensor A, at::Tensor B, at::Tensor keys, RoutedLinearOptions options);
  // The same with each expert's factors on their own (A[e] [r, d_in], B[e] [d_out, r]):
  // a routed model whose experts live in files of their own (route/assembly.h) maps each
  // one and never copies them into one stacked tensor.
  RoutedLinear(std::vector<at::Tensor> A, std::vector<at::Tensor> B, at::Tensor keys, RoutedLinearOptions options);

  // u [..., d_in], base_out [..., d_out] -> base_out + routed update (a new tensor;
  // base_out is not modified).
  at::Tensor apply(const at::Tensor& u, const at::Tensor& base_out) override;
  // W u computed here, then routed as apply() does; on the CPU kernel the update is added
  // into that fresh W u in place (no second [T, d_out] buffer). The same values as
  // apply(u, W u). What the model's hooked linears call.
  at::Tensor forward(const at::Tensor& u, const at::Tensor& weight) override;

  // The routing decision alone (u is flattened to [T, d_in]). Without keep_scores the
  // [T, N] scores are not kept (routing.scores undefined) where that saves a pass.
  Routing route(const at::Tensor& u, bool keep_scores = true) const;
  // base_out + the update of the given routing (u and base_out flattened or not).
  at::Tensor combine(const at::Tensor& u, const at::Tensor& base_out, const Routing& routing) const;

  // When set, every apply() adds, per expert, how many token slots chose it (the
  // routing trace, issue #7 item 6). The vector must hold N entries and outlive the layer.
  // apply() counts only the real tokens of the mask the model last told (set_tokens);
  // combine() counts every row it is given.
  void set_trace(std::vector<std::int64_t>* counts);
  // Sub-linear routing (route/ivf_index.h): score only the experts of the `probe` best
  // clusters (those beyond the first only within probe_margin of its centroid score). Null
  // restores exact routing. Throws Error{invalid} for Arrow's scores or an index of other
  // experts.
  void set_index(std::shared_ptr<const IvfIndex> index, std::int64_t probe, double probe_margin = kNoProbeMargin);
  // Keeps the context's token mask for the trace (routed_linear_tokens.cpp).
  void set_tokens(const model::TokenContext& context) override;

  std::int64_t experts() const { return n_; }
  std::int64_t rank() const { return r_; }
  std::int64_t d_in() const { return d_in_; }
  std::int64_t d_out() const { return d_out_; }
  int top_k() const { return options_.top_k; }
  double lora_scale() const { return scale_; }
  const RoutedLinearOptions& options() const { return options_; }
  // The experts' factors as [N, r, d_in] and [N, d_out, r]: the layer's own stack off the
  // CPU, or a view where they lie back to back (never write to either), else a new
  // stacked copy (detail::view_or_stack).
  at::Tensor stacked_A() const;
  at::Tensor stacked_B() const;
  const at::Tensor& keys() const { return keys_; }
  // The keys as the fused decision scores them per block of tokens, packed for our score
  // kernel; null where the BLAS scores them (benchmarks time the scores the same way).
  const detail::PackedKeys* packed_keys() const { return packed_keys_.get(); }

 private:
  static std::vector<at::Tensor> per_expert(const at::Tensor& stacked, const char* name, const char* shape);
  bool fast_path(const at::Tensor& u) const;
  // apply() and forward(): with in_place, the CPU kernel may write the update into
  // base_out's storage (forward's own W u, which nobody else holds).
  at::Tensor route_and_combine(const at::Tensor& u, const at::Tensor& base_out, bool in_place);
  at::Tensor combine_into(const at::Tensor& u, const at::Tensor& base_out, const Routing& routing,
                          bool in_place) const;
  // CPU float32 routing in few passes (detail/fused_routing.h): no normalised copy of u,
  // no [T, N] probabilities.
  bool fused_route_applies(const at::Tensor& u2) const;
  Routing fused_route(const at::Tensor& u2, bool keep_scores) const;
  // One block of token rows u_rows [rows, d_in] through the fused decision on this thread:
  // the rows' moments (mean, rstd: [rows]), their raw products with the keys into raw
  // [rows, N] (by the packed kernel, else by the BLAS from key_data; with neither, raw
  // already holds them), then the top-k and its weights (index, weight: [rows, k]). With
  // keep_scores raw ends up holding the scores. fused_route and one_pass_forward run it.
  void route_rows(const float* u_rows, std::int64_t rows, const float* key_data, float* raw, float* mean, float* rstd,
                  bool keep_scores, std::int64_t* index, float* weight) const;
  // forward() on the CPU kernel in one pass over the tokens (routed_linear_forward.cpp):
  // per block of tokens, W u, the routing decision and, for a small pool, the update,
  // while the block's rows are in cache. Empty where it does not apply.
  at::Tensor one_pass_forward(const at::Tensor& u2, const at::Tensor& weight) const;

  // Whether combine_into() runs detail::bucketed_update for these tensors.
  bool bucketed(const at::Tensor& u2, const at::Tensor& base2) const;

  std::vector<at::Tensor> A_, B_;  // per expert: [r, d_in], [d_out, r]
  // Off the CPU: the same factors as [N, r, d_in] and [N, d_out, r], which A_ and B_ then
  // view (the bucketed update gathers from them); undefined on the CPU.
  at::Tensor stacked_A_, stacked_B_;
  at::Tensor keys_;
  std::vector<float> key_sum_;  // Σ_j keys[e][j], when the keys are CPU float32 (fused_route)
  // Keys up to this size are scored per block of tokens while the block is in cache
  // (fused_route); larger key sets in one multi-threaded GEMM first.
  static constexpr std::int64_t kBlockedKeyBytes = 4 * 1024 * 1024;
  // The keys packed for our score kernel, where the CPU runs one and they are
  // scored per block (fused_route); null: the BLAS scores them.
  std::shared_ptr<const detail::PackedKeys> packed_keys_;
  std::vector<const float*> a_of_, b_of_;  // the same as raw pointers, when all are contiguous CPU float32
  std::vector<const std::uint16_t*> a16_of_, b16_of_;  // the same when all are contiguous CPU bfloat16
  bool fast_factors_ = false, requires_grad_ = false;
  std::shared_ptr<const IvfIndex> index_;
  std::int64_t probe_ = 0;
  double probe_margin_ = kNoProbeMargin;
  RoutedLinearOptions options_;
  std::int64_t n_ = 0, r_ = 0, d_in_ = 0, d_out_ = 0;
  double scale_ = 0;
  std::vector<std::int64_t>* trace_ = nullptr;
  at::Tensor token_mask_;  // [B, L] of the current batch (set_tokens), or undefined
};

// The update Σ_topk w · B_e A_e u · lora_scale computed densely: every expert's product
// for every token, masked to the routing (the reference the grouped path is tested and
// benchmarked against). u [T, d_in] -> [T, d_out]. Costs T·N·r·(d_in + d_out).
at::Tensor dense_routed_update(const at::Tensor& u, const at::Tensor& A, const at::Tensor& B, const Routing& routing,
                               double lora_scale);

}  // namespace gaggle::route
