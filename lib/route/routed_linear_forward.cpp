// RoutedLinear::one_pass_forward: the routed layer as the model's linears run it, W u plus
// the routed update, in one pass over the tokens on the CPU kernel (issue #15, item 1).
//
// Run one after the other over all T tokens, the base GEMM, the routing decision and the
// grouped update each stream the token rows u and the output rows from memory: the
// decision reads u once more, the update reads a token's row of u and reads and writes
// its output row once per chosen expert. At 4,096 tokens and d = 512 that is about 56 MB
// per call beyond the base layer's own traffic, which the cost model does not count.
// Here each worker takes blocks of about 1,024 tokens (4 MiB of rows) and, while a block's
// rows are in cache, computes their W u (single-threaded BLAS), routes them (the fused decision,
// detail/fused_routing.h) and, when the pool is small enough that each chosen expert
// gets several of the block's rows, adds the update into them; blocks of twice the size
// where that is what gets each expert enough rows (N = 129-204 at k = 2, d = 512). For
// larger pools the experts' factors would be streamed once per block: the update then
// runs afterwards, grouped over all tokens (combine_into), as apply() does.
//
// The values are those of apply(u, W u) up to float rounding: the same W u (one BLAS),
// the same routing (the same per-row kernels), each row's updates added in expert order.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "route/detail/cblas.h"
#include "route/detail/expert_factors.h"
#include "route/detail/lora_rows.h"
#include "route/routed_linear.h"

namespace gaggle::route {
namespace {

// Bytes of u's and the output's rows per block: 1,024 tokens at d = 512. The rows stay in
// the last-level cache while the three steps run over them, and each worker's BLAS packs W
// (1 MiB at d = 512) once per 1,024 tokens. Measured at N = 36 (d = 512, 4,096 tokens, 2
// threads, docs/performance.md), blocks of 1,024 and 2,048 tokens gave 1.08-1.09× the cost
// model, 512 1.10-1.11 and 256 (whose rows fit the 512 KiB L2) 1.12-1.20.
constexpr std::int64_t kBlockBytes = 4 * 1024 * 1024;
// Below this many tokens per block the per-block GEMMs pack W too often for their size:
// forward() keeps the whole-batch path (at::linear, then route and update).
constexpr std::int64_t kMinBlockTokens = 128;
// The update runs inside the block where each chosen expert gets at least this many of the
// block's token slots on average (k · tokens / N), as the grouped update asks of its token
// blocks: enough rows to repay reading the expert's factors (64 KiB at r = 16, d = 512) for
// the block. (At N = 166 the update inside 1,024-token blocks was 0.02 slower than after.)
constexpr std::int64_t kMinRowsPerExpert = 16;
// Where the update would run after the blocks but blocks twice as large would give each
// chosen expert kMinRowsPerGrownBlock of their slots, the blocks grow and the update runs
// inside. At N = 166 (d = 512, 4,096 tokens, 2 threads: 25 rows per expert in blocks of
// 2,048) that took 1.06-1.18x the cost model (median 1.14) against 1.11-1.20 (1.16) for
// blocks of 1,024 and the update after, in eight alternated rounds; at N = 250 (16 rows)
// it did not pay. More rows than for the usual blocks, since twice the rows leave less of
// the cache to the factors. Larger blocks alone do not pay: at N = 36 and 1,000 (update
// inside, and after, either way) 2,048 tokens were 0.01-0.05 slower than 1,024.
constexpr std::int64_t kBlockGrowth = 2;
constexpr std::int64_t kMinRowsPerGrownBlock = 20;

// Per-thread buffers, kept across calls: a fresh buffer of megabytes faults in its pages
// on every one of a forward's ~100 routed modules.
struct BlockBuffers {
  std::vector<float> mean, rstd, raw;       // the block's moments and raw scores
  std::vector<std::int64_t> offset;         // [n + 1] the block's slots per expert
  std::vector<std::int64_t> slot_token;     // the block's slots sorted by expert
  std::vector<float> slot_weight;           // routing weight × LoRA scale
  std::vector<float> bt;                    // Bᵀ of the experts transposed this call
  std::vector<std::uint8_t> transposed;     // [n] whether bt holds expert e's Bᵀ
};

}  // namespace

at::Tensor RoutedLinear::one_pass_forward(const at::Tensor& u2, const at::Tensor& weight) const {
  const std::int64_t t_count = u2.size(0), n = n_, d = d_in_, d_out = d_out_;
  const detail::SgemmFn sgemm = detail::row_major_sgemm();
  const bool keys_blocked = n * d * static_cast<std::int64_t>(sizeof(float)) <= kBlockedKeyBytes;
  const bool grad = at::GradMode::is_enabled() && weight.requires_grad();
  if (!options_.one_pass_forward || trace_ || index_ || !sgemm || !keys_blocked || grad || !fast_path(u2) || !fused_route_applies(u2) ||
      !detail::lora_rows_supported(r_, d, d_out) || !weight.device().is_cpu() || weight.scalar_type() != at::kFloat ||
      weight.dim() != 2 || weight.size(0) != d_out || weight.size(1) != d)
    return {};
  // A whole number of blocks per worker (at::parallel_for hands each a contiguous range).
  const std::int64_t threads = std::max(1, at::get_num_threads());
  const int k = options_.top_k;
  const std::int64_t block_tokens =
      std::max(kMinBlockTokens, kBlockBytes / ((d + d_out) * static_cast<std::int64_t>(sizeof(float))));
  auto blocks_of = [&](std::int64_t tokens) {
    return threads * std::max<std::int64_t>(1, (t_count + tokens * threads / 2) / (tokens * threads));
  };
  // Whether each chosen expert gets `rows` of a block's slots on average.
  auto update_fits = [&](std::int64_t blocks, std::int64_t rows) {
    return k * ((t_count + blocks - 1) / blocks) >= rows * n;
  };
  std::int64_t blocks = blocks_of(block_tokens);
  bool update_in_block = update_fits(blocks, kMinRowsPerExpert);
  if (!update_in_block && update_fits(blocks_of(kBlockGrowth * block_tokens), kMinRowsPerGrownBlock)) {
    blocks = blocks_of(kBlockGrowth * block_tokens);
    update_in_block = true;
  }
  if (t_count < kMinBlockTokens * blocks) return {};

  at::NoGradGuard no_grad;
  const auto u = u2.contiguous();
  const auto w = weight.contiguous();
  auto out = at::empty({t_count, d_out}, u.options());
  Routing routing;
  routing.topk_index = at::empty({t_count, k}, u.options().dtype(at::kLong));
  routing.topk_weight = at::empty({t_count, k}, u.options());
  const auto keys = keys_.contiguous();
  const float* key_data = packed_keys_ ? nullptr : keys.data_ptr<float>();  // the BLAS scores unpacked keys
  const detail::ExpertFactors factors{a_of_, b_of_, a16_of_, b16_of_};
  const float* u_data = u.data_ptr<float>();
  const float* w_data = w.data_ptr<float>();
  float* out_data = out.data_ptr<float>();
  std::int64_t* index = routing.topk_index.data_ptr<std::int64_t>();
  float* weight_data = routing.topk_weight.data_ptr<float>();
  const std::int64_t most_rows = (t_count + blocks - 1) / blocks;
  const float scale = static_cast<float>(scale_);
  std::vector<std::uint8_t> started(update_in_block ? t_count : 0, 0);  // (in place: base is the row itself)

  at::parallel_for(0, blocks, 1, [&](std::int64_t block_begin, std::int64_t block_end) {
    detail::SingleThreadedBlas one_thread;
    thread_local BlockBuffers buf;
    buf.mean.resize(most_rows), buf.rstd.resize(most_rows);
    if (buf.raw.size() < static_cast<std::size_t>(most_rows * n)) buf.raw.resize(most_rows * n);
    if (update_in_block) {
      buf.offset.resize(n + 1);
      buf.slot_token.resize(most_rows * k), buf.slot_weight.resize(most_rows * k);
      if (buf.bt.size() < static_cast<std::size_t>(n * r_ * d_out)) buf.bt.resize(n * r_ * d_out);
      buf.transposed.assign(n, 0);  // Bᵀ is transposed at most once per call and worker
    }
    detail::LoraRowsTarget target;
    target.r = r_, target.d_in = d, target.d_out = d_out;
    target.u = u_data, target.base = out_data, target.out = out_data;  // in place: the row holds W u
    target.started = started.data();
    for (std::int64_t block = block_begin; block < block_end; ++block) {
      const std::int64_t lo = t_count * block / blocks, rows = t_count * (block + 1) / blocks - lo;
      const float* u_rows = u_data + lo * d;
      sgemm(false, true, rows, d_out, d, 1.0f, u_rows, d, w_data, d, 0.0f, out_data + lo * d_out, d_out);
      std::int64_t* block_index = index + lo * k;
      float* block_weight = weight_data + lo * k;
      route_rows(u_rows, rows, key_data, buf.raw.data(), buf.mean.data(), buf.rstd.data(), /*keep_scores=*/false,
                 block_index, block_weight);
      if (!update_in_block) continue;

      // The block's slots sorted by expert (counting sort), tokens ascending within one.
      auto& offset = buf.offset;
      std::fill(offset.begin(), offset.end(), 0);
      for (std::int64_t s = 0; s < rows * k; ++s) ++offset[block_index[s] + 1];
      for (std::int64_t e = 0; e < n; ++e) offset[e + 1] += offset[e];
      for (std::int64_t s = 0; s < rows * k; ++s) {
        const std::int64_t at = offset[block_index[s]]++;
        buf.slot_token[at] = lo + s / k;
        buf.slot_weight[at] = block_weight[s] * scale;
      }
      // offset[e] now ends expert e's slots; expert e's start where e - 1's end.
      std::int64_t first = 0;
      for (std::int64_t e = 0; e < n; ++e) {  // ascending: a row's updates in expert order
        const std::int64_t last = offset[e], count = last - first;
        if (count == 0) continue;
        factors.point(target, e);
        target.bt = nullptr;
        if (count >= detail::kLoraTransposeRows) {
          float* bt = buf.bt.data() + e * r_ * d_out;
          if (!buf.transposed[e]) detail::transpose_target_b(target, bt), buf.transposed[e] = 1;
          target.bt = bt;
        }
        detail::add_lora_rows(target, buf.slot_token.data() + first, buf.slot_weight.data() + first, count);
        first = last;
      }
    }
  });
  if (update_in_block) return out;
  return combine_into(u, out, routing, /*in_place=*/true);
}

}  // namespace gaggle::route
