#include "route/routed_linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "io/error.h"
#include "route/detail/bucketed_update.h"
#include "route/detail/cblas.h"
#include "route/detail/expert_factors.h"
#include "route/detail/fused_routing.h"
#include "route/detail/lora_rows.h"
#include "route/detail/packed_keys.h"
#include "route/detail/room.h"

namespace gaggle::route {
namespace {

constexpr std::int64_t kChunkRows = 128;  // rows of one expert's group processed at once (stays in L2)
constexpr std::int64_t kCacheBlockTokens = 128;  // tokens whose rows stay in L2 together
constexpr std::int64_t kRowsPerExpert = 16;      // rows an expert should get per block

std::string shape_of(const at::Tensor& t) {
  std::string s = "[";
  for (std::int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

void require_routed(bool ok, const std::string& message) {
  if (!ok) throw_error(ErrorCode::invalid, kRoom, "routed linear: " + message);
}

bool plain_cpu(const at::Tensor& t, at::ScalarType type) {
  return t.device().is_cpu() && t.scalar_type() == type && t.is_contiguous() && !t.requires_grad();
}

using detail::ExpertFactors;

// Row updates of the grouped kernel, vectorised (the build's -O2 leaves these loops
// scalar) and cloned for AVX2 where the CPU has it. Element-wise: results are the same.
[[gnu::target_clones("avx2", "default"), gnu::optimize("O3")]] void add_into(float* __restrict out,
                                                                               const float* __restrict y,
                                                                               std::int64_t n) {
  for (std::int64_t c = 0; c < n; ++c) out[c] += y[c];
}

[[gnu::target_clones("avx2", "default"), gnu::optimize("O3")]] void sum_into(float* __restrict out,
                                                                               const float* __restrict base,
                                                                               const float* __restrict y,
                                                                               std::int64_t n) {
  for (std::int64_t c = 0; c < n; ++c) out[c] = base[c] + y[c];
}

// One expert's rows [lo, hi) of the sorted slots through two BLAS calls per chunk of
// rows: the token rows are gathered into a buffer, the update written to another and
// then added into the output. The path for shapes or CPUs detail::add_lora_rows does
// not take.
void add_expert_rows_blas(const detail::LoraRowsTarget& g, detail::SgemmFn sgemm, const std::int64_t* slot_token,
                          const float* slot_weight, std::int64_t lo, std::int64_t hi) {
  const std::int64_t r = g.r, d_in = g.d_in, d_out = g.d_out;
  // Per-thread buffers kept across calls: no allocation, and no pages to fault in
  // again (~10 µs a page in this VM) on each of the ~100 routed modules of a forward.
  thread_local std::vector<float> gathered, hidden, y;
  if (gathered.size() < static_cast<std::size_t>(kChunkRows * d_in)) gathered.resize(kChunkRows * d_in);
  if (hidden.size() < static_cast<std::size_t>(kChunkRows * r)) hidden.resize(kChunkRows * r);
  if (y.size() < static_cast<std::size_t>(kChunkRows * d_out)) y.resize(kChunkRows * d_out);
  for (std::int64_t begin = lo; begin < hi; begin += kChunkRows) {
    const std::int64_t rows = std::min(kChunkRows, hi - begin);
    for (std::int64_t row = 0; row < rows; ++row)
      std::memcpy(gathered.data() + row * d_in, g.u + slot_token[begin + row] * d_in, d_in * sizeof(float));
    sgemm(false, true, rows, r, d_in, 1.0f, gathered.data(), d_in, g.a, d_in, 0.0f, hidden.data(), r);
    for (std::int64_t row = 0; row < rows; ++row) {
      const float sw = slot_weight[begin + row];
      float* h = hidden.data() + row * r;
      for (std::int64_t j = 0; j < r; ++j) h[j] *= sw;
    }
    sgemm(false, true, rows, d_out, r, 1.0f, hidden.data(), r, g.b, r, 0.0f, y.data(), d_out);
    for (std::int64_t row = 0; row < rows; ++row) {
      const std::int64_t t = slot_token[begin + row];
      float* o = g.out + t * d_out;
      const float* yr = y.data() + row * d_out;
      if (g.started[t] || g.base == g.out) {  // (in place: the row already holds base)
        add_into(o, yr, d_out);
      } else {
        sum_into(o, g.base + t * d_out, yr, d_out);
        g.started[t] = 1;
      }
    }
  }
}

// The token slots sorted by expert (grouped_combine_cpu's counting sort).
struct ExpertSlots {
  const std::vector<std::int64_t>& offset;       // [n + 1] expert e's slots are [offset[e], offset[e + 1])
  const std::vector<std::int64_t>& selected;     // experts with slots, ascending
  const std::vector<std::int64_t>& slot_token;   // token of each sorted slot, ascending within an expert
  const std::vector<float>& slot_weight;         // routing weight × LoRA scale
};

// The update with few rows per expert (a large pool): each worker takes a contiguous
// range of the chosen experts, about equal in slots, so that every expert's factors are
// read from memory once instead of once per token block. A token's row is written by the
// worker that owns its lowest expert (base + its updates, in expert order); the other
// workers add theirs into their own partial rows, folded in afterwards in worker order.
// Deterministic for a given thread count; with k = 2 a row is (base + y1) + y2 either way.
void combine_by_expert(const detail::LoraRowsTarget& shared, const ExpertFactors& factors, const ExpertSlots& slots,
                       std::int64_t t_count, std::int64_t workers) {
  const std::int64_t d_out = shared.d_out, r = shared.r;
  const auto& offset = slots.offset;
  const auto& selected = slots.selected;
  const auto selected_count = static_cast<std::int64_t>(selected.size());
  const std::int64_t total = offset.back();
  // Worker p owns selected[first[p], first[p + 1]).
  std::vector<std::int64_t> first(workers + 1, selected_count);
  first[0] = 0;
  for (std::int64_t p = 1; p < workers; ++p)
    first[p] = std::lower_bound(selected.begin(), selected.end(), total * p / workers,
                                [&](std::int64_t e, std::int64_t bound) { return offset[e] < bound; }) -
               selected.begin();
  std::vector<std::int32_t> owner_of_expert(offset.size() - 1, 0);
  for (std::int64_t p = 0; p < workers; ++p)
    for (std::int64_t i = first[p]; i < first[p + 1]; ++i) owner_of_expert[selected[i]] = static_cast<std::int32_t>(p);
  std::vector<std::int32_t> row_owner(t_count, static_cast<std::int32_t>(workers));  // lowest owner of a token's slots
  for (const std::int64_t e : selected)
    for (std::int64_t s = offset[e]; s < offset[e + 1]; ++s)
      row_owner[slots.slot_token[s]] = std::min(row_owner[slots.slot_token[s]], owner_of_expert[e]);

  // Partial rows of workers 1..P-1, kept across calls on this thread (a fresh buffer would
  // fault in its pages on every module). Only rows a worker writes are touched.
  thread_local std::vector<float> partial;
  const std::int64_t partial_rows = (workers - 1) * t_count;
  if (partial.size() < static_cast<std::size_t>(partial_rows * d_out)) partial.resize(partial_rows * d_out);
  float* partial_data = partial.data();  // the workers below have their own `partial`
  std::vector<std::uint8_t> partial_started(partial_rows, 0);

  at::parallel_for(0, workers, 1, [&](std::int64_t p_begin, std::int64_t p_end) {
    thread_local std::vector<std::int64_t> own_token, other_token;
    thread_local std::vector<float> own_weight, other_weight, transposed;
    for (std::int64_t p = p_begin; p < p_end; ++p) {
      detail::LoraRowsTarget own = shared, other = shared;
      if (p > 0) {
        other.out = partial_data + (p - 1) * t_count * d_out;
        other.base = nullptr;  // a partial row starts from zero
        other.started = partial_started.data() + (p - 1) * t_count;
      }
      for (std::int64_t i = first[p]; i < first[p + 1]; ++i) {
        const std::int64_t e = selected[i];
        own_token.clear(), own_weight.clear(), other_token.clear(), other_weight.clear();
        for (std::int64_t s = offset[e]; s < offset[e + 1]; ++s) {
          const std::int64_t t = slots.slot_token[s];
          auto& tokens = row_owner[t] == p ? own_token : other_token;
          auto& weights = row_owner[t] == p ? own_weight : other_weight;
          tokens.push_back(t);
          weights.push_back(slots.slot_weight[s]);
        }
        factors.point(own, e);
        factors.point(other, e);
        own.bt = other.bt = nullptr;
        if (offset[e + 1] - offset[e] >= detail::kLoraTransposeRows) {  // once for both lists
          if (transposed.size() < static_cast<std::size_t>(r * d_out)) transposed.resize(r * d_out);
          detail::transpose_target_b(own, transposed.data());
          own.bt = other.bt = transposed.data();
        }
        if (!own_token.empty())
          detail::add_lora_rows(own, own_token.data(), own_weight.data(), static_cast<std::int64_t>(own_token.size()));
        if (!other_token.empty())
          detail::add_lora_rows(other, other_token.data(), other_weight.data(),
                                static_cast<std::int64_t>(other_token.size()));
      }
    }
  });
  at::parallel_for(0, t_count, 64, [&](std::int64_t t_begin, std::int64_t t_end) {
    for (std::int64_t t = t_begin; t < t_end; ++t)
      for (std::int64_t p = 1; p < workers; ++p)
        if (partial_started[(p - 1) * t_count + t])
          add_into(shared.out + t * d_out, partial_data + ((p - 1) * t_count + t) * d_out, d_out);
  });
}

// The grouped kernel: out = base + Σ_slots w · scale · B_e (A_e u). u [T, d_in],
// base [T, d_out], all contiguous float32 on the CPU; the factors float32, or bfloat16
// where detail::lora_rows_supported().
// in_place: the update is added into base's own storage, which is returned (no second
// [T, d_out] buffer to allocate, fault in and stream; the caller owns base).
at::Tensor grouped_combine_cpu(const at::Tensor& u, const at::Tensor& base, const ExpertFactors& factors,
                               std::int64_t r, const Routing& routing, double scale, std::vector<std::int64_t>* trace,
                               detail::SgemmFn sgemm, bool in_place) {
  const std::int64_t t_count = u.size(0), d_in = u.size(1), d_out = base.size(1);
  const std::int64_t n = factors.size();
  const std::int64_t k = routing.topk_index.size(1), slots = t_count * k;
  auto index = routing.topk_index.contiguous();
  auto weight = routing.topk_weight.to(at::kFloat).contiguous();
  const std::int64_t* idx = index.data_ptr<std::int64_t>();
  const float* w = weight.data_ptr<float>();

  // One counting sort of the token slots by expert.
  std::vector<std::int64_t> offset(n + 1, 0);
  for (std::int64_t s = 0; s < slots; ++s) {
    std::int64_t e = idx[s];
    if (e < 0 || e >= n) throw_error(ErrorCode::invalid, kRoom, "routed linear: expert index " + std::to_string(e) +
                                                                    " out of range for " + std::to_string(n) + " experts");
    ++offset[e + 1];
  }
  std::vector<std::int64_t> selected;  // the experts some token chose, ascending
  for (std::int64_t e = 0; e < n; ++e) {
    if (offset[e + 1]) {
      selected.push_back(e);
      if (trace) (*trace)[e] += offset[e + 1];
    }
    offset[e + 1] += offset[e];
  }
  // Slots in expert order; within an expert, in token order (s increases with the token).
  std::vector<std::int64_t> slot_token(slots);
  std::vector<float> slot_weight(slots);
  {
    std::vector<std::int64_t> cursor(offset.begin(), offset.end() - 1);
    for (std::int64_t s = 0; s < slots; ++s) {
      std::int64_t p = cursor[idx[s]]++;
      slot_token[p] = s / k;
      slot_weight[p] = static_cast<float>(w[s] * scale);
    }
  }

  // Each worker owns a contiguous block of tokens (their output rows), and runs every
  // selected expert's group restricted to its block: no two workers write one row, and
  // a row's contributions are added in expert order — deterministic, with no per-slot
  // buffer and no extra pass over the output. Within an expert's group the block's
  // slots are contiguous (token order), found by binary search.
  //
  // Blocks are small enough that a block's token and output rows stay in L2 while the
  // experts run over them (128 tokens: 2 × 256 KiB at d = 512), but large enough that
  // each chosen expert still gets about 16 of a block's rows, so that its factors, read
  // once per block, are not streamed for one or two rows each.
  const std::int64_t threads = std::max<std::int64_t>(1, std::min<std::int64_t>(at::get_num_threads(), t_count / 64));
  const std::int64_t block_tokens = std::max<std::int64_t>(kCacheBlockTokens, kRowsPerExpert * n / k);
  // A whole number of blocks per thread: at::parallel_for hands each thread a contiguous
  // range of equal length.
  const std::int64_t blocks = threads * std::max<std::int64_t>(1, t_count / block_tokens / threads);
  auto out = in_place ? base : at::empty({t_count, d_out}, u.options());
  const float* u_data = u.data_ptr<float>();
  const float* base_data = base.data_ptr<float>();
  float* out_data = out.data_ptr<float>();
  std::vector<std::uint8_t> started(t_count, 0);
  // Where the CPU and the shapes allow, one pass per token row (detail/lora_rows.h)
  // instead of two BLAS calls per chunk with gather and scatter buffers.
  const bool fused = detail::lora_rows_supported(r, d_in, d_out);
  detail::LoraRowsTarget shared;
  shared.r = r, shared.d_in = d_in, shared.d_out = d_out;
  shared.u = u_data, shared.base = base_data, shared.out = out_data, shared.started = started.data();
  // With so many experts that each gets fewer than kRowsPerExpert rows per token block,
  // token blocks would each stream every chosen expert's factors: split the experts
  // among the threads instead.
  const auto selected_count = static_cast<std::int64_t>(selected.size());
  if (fused && threads > 1 && slots < kRowsPerExpert * selected_count * blocks) {
    combine_by_expert(shared, factors, ExpertSlots{offset, selected, slot_token, slot_weight}, t_count, threads);
    return out;
  }
  // An expert with many rows in most blocks has B transposed once for all of them
  // (detail/lora_rows.h); the others, per block where their rows make it pay.
  std::vector<const float*> bt_of(n, nullptr);
  if (fused) {
    std::vector<std::int64_t> busy;
    for (const std::int64_t e : selected)
      if (offset[e + 1] - offset[e] >= detail::kLoraTransposeRows * blocks) busy.push_back(e);
    thread_local std::vector<float> transposed;  // kept across calls, like the kernels' buffers
    const auto busy_count = static_cast<std::int64_t>(busy.size());
    if (transposed.size() < static_cast<std::size_t>(busy_count * r * d_out)) transposed.resize(busy_count * r * d_out);
    float* bt_data = transposed.data();  // the workers below have their own `transposed`
    for (std::int64_t i = 0; i < busy_count; ++i) bt_of[busy[i]] = bt_data + i * r * d_out;
    at::parallel_for(0, busy_count, 1, [&](std::int64_t begin, std::int64_t end) {
      detail::LoraRowsTarget expert = shared;
      for (std::int64_t i = begin; i < end; ++i) {
        factors.point(expert, busy[i]);
        detail::transpose_target_b(expert, bt_data + i * r * d_out);
      }
    });
  }
  at::parallel_for(0, blocks, 1, [&](std::int64_t block_begin, std::int64_t block_end) {
    detail::SingleThreadedBlas one_thread;
    detail::LoraRowsTarget target = shared;
    for (std::int64_t block = block_begin; block < block_end; ++block) {
      const std::int64_t t_lo = t_count * block / blocks, t_hi = t_count * (block + 1) / blocks;
      for (const std::int64_t e : selected) {  // experts no token chose are never touched
        const auto* first = slot_token.data() + offset[e];
        const auto* last = slot_token.data() + offset[e + 1];
        const std::int64_t lo = std::lower_bound(first, last, t_lo) - slot_token.data();
        const std::int64_t hi = std::lower_bound(first, last, t_hi) - slot_token.data();
        if (lo == hi) continue;
        factors.point(target, e);
        target.bt = bt_of[e];
        if (fused)
          detail::add_lora_rows(target, slot_token.data() + lo, slot_weight.data() + lo, hi - lo);
        else
          add_expert_rows_blas(target, sgemm, slot_token.data(), slot_weight.data(), lo, hi);
      }
    }
  });
  return out;
}

// The same algorithm in LibTorch ops: any device, any float dtype, autograd.
at::Tensor grouped_combine_generic(const at::Tensor& u, const at::Tensor& base, const std::vector<at::Tensor>& A,
                                   const std::vector<at::Tensor>& B, const Routing& routing, double scale,
                                   std::vector<std::int64_t>* trace) {
  const auto n = static_cast<std::int64_t>(A.size());
  const std::int64_t k = routing.topk_index.size(1);
  auto flat = routing.topk_index.reshape({-1});
  auto sorted = at::sort(flat, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  auto order = std::get<1>(sorted);
  auto token = at::div(order, k, "floor");
  auto counts = at::bincount(flat, {}, n).cpu();
  const std::int64_t* count = counts.data_ptr<std::int64_t>();
  auto gathered = u.index_select(0, token);
  std::vector<at::Tensor> parts;
  std::int64_t offset = 0;
  auto selected = at::nonzero(counts).reshape({-1}).contiguous();
  const std::int64_t* sel = selected.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < selected.size(0); ++i) {
    const std::int64_t e = sel[i], c = count[e];
    if (trace) (*trace)[e] += c;
    auto h = at::mm(gathered.narrow(0, offset, c), A[e].to(u.scalar_type()).t());
    parts.push_back(at::mm(h, B[e].to(u.scalar_type()).t()));
    offset += c;
  }
  auto y = at::cat(parts, 0) * (routing.topk_weight.reshape({-1}).index_select(0, order).unsqueeze(1) * scale);
  return base + at::zeros_like(base).index_add(0, token, y.to(base.scalar_type()));
}

}  // namespace

RoutedLinear::RoutedLinear(at::Tensor A, at::Tensor B, at::Tensor keys, RoutedLinearOptions options)
    : RoutedLinear(per_expert(A, "A", "[N, r, d_in]"), per_expert(B, "B", "[N, d_out, r]"), std::move(keys), options) {}

std::vector<at::Tensor> RoutedLinear::per_expert(const at::Tensor& stacked, const char* name, const char* shape) {
  require_routed(stacked.defined() && stacked.dim() == 3, std::string(name) + " must be " + shape + ", got " +
                                                              (stacked.defined() ? shape_of(stacked) : "nothing"));
  return stacked.unbind(0);  // views: the stacked storage stays shared, never copied
}

RoutedLinear::RoutedLinear(std::vector<at::Tensor> A, std::vector<at::Tensor> B, at::Tensor keys,
                           RoutedLinearOptions options)
    : A_(std::move(A)), B_(std::move(B)), keys_(std::move(keys)), options_(options) {
  require_routed(keys_.defined(), "keys must be given");
  n_ = static_cast<std::int64_t>(A_.size());
  require_routed(n_ >= 1, "needs at least one expert");
  require_routed(static_cast<std::int64_t>(B_.size()) == n_,
                 std::to_string(A_.size()) + " experts' A but " + std::to_string(B_.size()) + " experts' B");
  require_routed(A_[0].defined() && A_[0].dim() == 2, "expert 0: A must be [r, d_in]");
  r_ = A_[0].size(0);
  d_in_ = A_[0].size(1);
  require_routed(B_[0].defined() && B_[0].dim() == 2, "expert 0: B must be [d_out, r]");
  d_out_ = B_[0].size(0);
  bool all_f32 = true, all_bf16 = true;
  for (std::int64_t e = 0; e < n_; ++e) {
    const at::Tensor &a = A_[e], &b = B_[e];
    require_routed(a.defined() && a.dim() == 2 && a.size(0) == r_ && a.size(1) == d_in_,
                   "expert " + std::to_string(e) + ": A must be [r, d_in] = [" + std::to_string(r_) + ", " +
                       std::to_string(d_in_) + "], got " + (a.defined() ? shape_of(a) : "nothing"));
    require_routed(b.defined() && b.dim() == 2 && b.size(0) == d_out_ && b.size(1) == r_,
                   "expert " + std::to_string(e) + ": B must be [d_out, r] = [" + std::to_string(d_out_) + ", " +
                       std::to_string(r_) + "], got " + (b.defined() ? shape_of(b) : "nothing"));
    require_routed(a.device() == keys_.device() && b.device() == keys_.device(), "A, B and keys must be on one device");
    all_f32 = all_f32 && plain_cpu(a, at::kFloat) && plain_cpu(b, at::kFloat);
    all_bf16 = all_bf16 && plain_cpu(a, at::kBFloat16) && plain_cpu(b, at::kBFloat16);
    requires_grad_ = requires_grad_ || a.requires_grad() || b.requires_grad();
  }
  // The CPU kernel needs either the one-pass update (AVX2, shapes in multiples of 8) or a
  // CBLAS sgemm for its BLAS path (an upstream MKL build of LibTorch exports none);
  // bfloat16 factors the one-pass update (the BLAS path multiplies float32 only).
  const bool one_pass = detail::lora_rows_supported(r_, d_in_, d_out_);
  fast_factors_ = (all_f32 && (one_pass || detail::row_major_sgemm() != nullptr)) || (all_bf16 && one_pass);
  if (fast_factors_ && all_f32) {
    a_of_.reserve(n_);
    b_of_.reserve(n_);
    for (std::int64_t e = 0; e < n_; ++e) {
      a_of_.push_back(A_[e].data_ptr<float>());
      b_of_.push_back(B_[e].data_ptr<float>());
    }
  } else if (fast_factors_) {
    // at::BFloat16 is a struct of the same 16 bits.
    a16_of_.reserve(n_);
    b16_of_.reserve(n_);
    for (std::int64_t e = 0; e < n_; ++e) {
      a16_of_.push_back(static_cast<const std::uint16_t*>(A_[e].data_ptr()));
      b16_of_.push_back(static_cast<const std::uint16_t*>(B_[e].data_ptr()));
    }
  }
  require_routed(
      keys_.dim() == 2 && keys_.size(0) == n_ && keys_.size(1) == d_in_,
      "keys must be [N, d_in] = [" + std::to_string(n_) + ", " + std::to_string(d_in_) + "], got " + shape_of(keys_));
  require_routed(r_ >= 1, "needs experts of rank at least 1");
  if (keys_.device().is_cpu() && keys_.scalar_type() == at::kFloat) {
    auto keys = keys_.contiguous();
    key_sum_.resize(n_);
    detail::key_sums(keys.data_ptr<float>(), n_, d_in_, key_sum_.data());
    if (detail::packed_keys_supported() && n_ * d_in_ * static_cast<std::int64_t>(sizeof(float)) <= kBlockedKeyBytes) {
      auto packed = std::make_shared<const detail::PackedKeys>(keys.data_ptr<float>(), n_, d_in_);
      // The 512-bit kernel from 16 keys on: below that its registers mostly multiply
      // padding, and the BLAS was as fast on the AVX-512 machine it was measured on. The
      // 256-bit one at any count: few keys make the scores a pass over the token rows,
      // which it makes in one go (8 keys, one thread: 0.51 ms against the BLAS's 1.15,
      // `gaggle-bench kernels --keys 8`).
      if (packed->kernel() == detail::ScoreKernel::avx2 || n_ >= 16) packed_keys_ = std::move(packed);
    }
  }
  require_routed(
      options_.top_k >= 1 && options_.top_k <= n_,
      "top-k " + std::to_string(options_.top_k) + " must be between 1 and the " + std::to_string(n_) + " experts");
  scale_ = options_.lora_scale > 0 ? options_.lora_scale : 1.0 / static_cast<double>(r_);
  // Off the CPU the update gathers the chosen experts' factors from one stacked tensor
  // each (detail/bucketed_update.h). Not for factors that train: their gradients must
  // reach the caller's tensors, not a copy.
  if (!keys_.device().is_cpu() && !requires_grad_) {
    stacked_A_ = detail::stack_in_place(A_);
    stacked_B_ = detail::stack_in_place(B_);
  }
}

at::Tensor RoutedLinear::stacked_A() const { return stacked_A_.defined() ? stacked_A_ : detail::view_or_stack(A_); }
at::Tensor RoutedLinear::stacked_B() const { return stacked_B_.defined() ? stacked_B_ : detail::view_or_stack(B_); }

void RoutedLinear::set_index(std::shared_ptr<const IvfIndex> index, std::int64_t probe, double probe_margin) {
  if (index) {
    require_routed(options_.score == ScoreKind::layer_norm_dot,
                   "an ivf index serves scores LN(u) · key (phatgoose, average-activation), not Arrow's |u · key|");
    require_routed(index->members.defined() && index->members.size(0) == n_ && index->centroids.size(1) == d_in_,
                   "the index is over other experts or another width");
    require_routed(probe >= 1 && probe <= index->clusters(), "probe " + std::to_string(probe) +
                                                                 " must be between 1 and the " +
                                                                 std::to_string(index->clusters()) + " clusters");
    require_routed(probe_margin >= 0, "the probe margin must be >= 0");
  }
  index_ = std::move(index);
  probe_ = probe;
  probe_margin_ = probe_margin;
}

void RoutedLinear::set_trace(std::vector<std::int64_t>* counts) {
  if (counts && static_cast<std::int64_t>(counts->size()) != n_)
    throw_error(ErrorCode::invalid, kRoom, "routed linear: trace holds " + std::to_string(counts->size()) +
                                               " counts for " + std::to_string(n_) + " experts");
  trace_ = counts;
}

// RoutedLinear::route: routed_linear_route.cpp (the routing decision in few passes).

bool RoutedLinear::fast_path(const at::Tensor& u) const {
  if (options_.force_generic || (at::GradMode::is_enabled() && (u.requires_grad() || requires_grad_))) return false;
  return fast_factors_ && u.device().is_cpu() && u.scalar_type() == at::kFloat;
}

at::Tensor RoutedLinear::combine(const at::Tensor& u, const at::Tensor& base_out, const Routing& routing) const {
  return combine_into(u, base_out, routing, /*in_place=*/false);
}

at::Tensor RoutedLinear::combine_into(const at::Tensor& u, const at::Tensor& base_out, const Routing& routing,
                                      bool in_place) const {
  require_routed(base_out.size(-1) == d_out_, "base output has width " + std::to_string(base_out.size(-1)) +
                                                  ", expected d_out " + std::to_string(d_out_));
  auto u2 = u.reshape({-1, d_in_});
  auto base2 = base_out.reshape({-1, d_out_});
  require_routed(u2.size(0) == base2.size(0),
                 "input has " + std::to_string(u2.size(0)) + " tokens, base output " + std::to_string(base2.size(0)));
  if (u2.size(0) == 0) return base_out.clone();
  at::Tensor out;
  if (fast_path(u2) && base2.scalar_type() == at::kFloat && base2.device().is_cpu()) {
    at::NoGradGuard no_grad;
    // In place only into a tensor outside autograd's graph (a contiguous base2 is a view
    // of base_out's storage; otherwise .contiguous() made a copy that is ours anyway).
    out = grouped_combine_cpu(u2.contiguous(), base2.contiguous(), ExpertFactors{a_of_, b_of_, a16_of_, b16_of_}, r_,
                              routing, scale_, trace_, detail::row_major_sgemm(),
                              in_place && !base2.requires_grad());
  } else if (bucketed(u2, base2)) {
    at::NoGradGuard no_grad;
    // On the CPU (tests and benchmarks ask for it) the factors may be stacked for the call.
    out = detail::bucketed_update(u2, base2, stacked_A(), stacked_B(), routing.topk_index, routing.topk_weight, scale_,
                                  trace_);
  } else {
    out = grouped_combine_generic(u2, base2, A_, B_, routing, scale_, trace_);
  }
  return out.reshape(base_out.sizes());
}

bool RoutedLinear::bucketed(const at::Tensor& u2, const at::Tensor& base2) const {
  using Update = RoutedLinearOptions::GenericUpdate;
  if (options_.generic_update == Update::per_expert) return false;
  if (at::GradMode::is_enabled() && (u2.requires_grad() || base2.requires_grad() || requires_grad_)) return false;
  return options_.generic_update == Update::bucketed || !u2.device().is_cpu();
}

// RoutedLinear::apply and set_tokens: routed_linear_tokens.cpp (the trace counts real tokens only).

at::Tensor dense_routed_update(const at::Tensor& u, const at::Tensor& A, const at::Tensor& B, const Routing& routing,
                               double lora_scale) {
  const std::int64_t n = A.size(0), r = A.size(1), d_in = A.size(2), d_out = B.size(1);
  auto u2 = u.reshape({-1, d_in});
  const std::int64_t t_count = u2.size(0);
  auto hidden = at::mm(u2, A.reshape({n * r, d_in}).t());  // every expert, every token: [T, N·r]
  auto mask = at::zeros({t_count, n}, hidden.options()).scatter(1, routing.topk_index, routing.topk_weight);
  hidden = (hidden.view({t_count, n, r}) * mask.unsqueeze(2)).view({t_count, n * r});
  auto b_cat = B.permute({1, 0, 2}).reshape({d_out, n * r});
  return at::mm(hidden, b_cat.t()) * lora_scale;
}

}  // namespace gaggle::route
