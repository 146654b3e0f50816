#pragma once
// The routed update as a few batched matrix products, for devices where each kernel
// launch costs more than a small product's arithmetic (a GPU): the per-expert loop of
// the generic path launches two products per chosen expert, 2,000 at N = 1,000.
//
// The T·k token slots are sorted by expert once. Experts whose slot counts round up to
// the same power of two form one bucket; each bucket is one pair of batched products
// over its experts, their slots padded to that size (padding slots carry weight 0 and so
// add nothing), so at most ⌈log2(T·k)⌉ + 1 buckets whatever N is, and padding at most
// doubles the rows. Only the chosen experts' factors are gathered; nothing is computed
// for the others, and no [T, N, r] product is formed (design.md §5). One host
// synchronisation per call reads the counts.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace gaggle::route::detail {

// base [T, d_out] + Σ_slots w · scale · B_e (A_e u_t), as a new tensor, on u's device.
// u [T, d_in]; A [N, r, d_in] and B [N, d_out, r] stacked (any float dtype: used in u's);
// topk_index [T, k] int64, topk_weight [T, k]. trace: per-expert slot counts are added
// to it when given.
at::Tensor bucketed_update(const at::Tensor& u, const at::Tensor& base, const at::Tensor& A, const at::Tensor& B,
                           const at::Tensor& topk_index, const at::Tensor& topk_weight, double scale,
                           std::vector<std::int64_t>* trace);

// The experts' factors (each [r, d] or [d, r], all one shape and dtype) as one [N, ...]
// tensor without a copy, where they lie back to back in one storage (a stacked tensor's
// unbind()); undefined where they do not.
at::Tensor view_as_stacked(const std::vector<at::Tensor>& parts);

// view_as_stacked(parts) where it is defined, else at::stack(parts), a new copy.
at::Tensor view_or_stack(const std::vector<at::Tensor>& parts);

// view_or_stack(parts), with `parts` then pointed into the result (each becomes a view of
// it): where that made a copy, the factors still take no more memory than before.
at::Tensor stack_in_place(std::vector<at::Tensor>& parts);

}  // namespace gaggle::route::detail
