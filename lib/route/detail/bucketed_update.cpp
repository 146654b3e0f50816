#include "route/detail/bucketed_update.h"

#include <ATen/ATen.h>

#include <bit>
#include <map>

namespace gaggle::route::detail {

at::Tensor bucketed_update(const at::Tensor& u, const at::Tensor& base, const at::Tensor& A, const at::Tensor& B,
                           const at::Tensor& topk_index, const at::Tensor& topk_weight, double scale,
                           std::vector<std::int64_t>* trace) {
  const std::int64_t n = A.size(0), k = topk_index.size(1), d_in = u.size(1), d_out = base.size(1);
  const std::int64_t slots = topk_index.numel();
  auto out = base.clone();
  if (slots == 0) return out;
  auto flat = topk_index.reshape({-1});
  // The slots in expert order; slot s belongs to token s / k.
  auto order = std::get<1>(at::sort(flat, /*stable=*/true, /*dim=*/0, /*descending=*/false));
  auto long_options = flat.options();
  // One more slot at the end, token 0 with weight 0: where padding points.
  auto slot_token = at::cat({at::div(order, k, "floor"), at::zeros({1}, long_options)});
  auto slot_weight = at::cat(
      {topk_weight.reshape({-1}).index_select(0, order).to(u.scalar_type()) * scale, at::zeros({1}, u.options())});

  // The one synchronisation: how many slots each expert got.
  auto counts = at::bincount(flat, {}, n).to(at::kCPU).contiguous();
  const std::int64_t* count = counts.data_ptr<std::int64_t>();
  // Buckets by the power of two a count rounds up to: {capacity -> (expert, first sorted slot)}.
  std::map<std::int64_t, std::vector<std::pair<std::int64_t, std::int64_t>>> buckets;
  std::int64_t first = 0;
  for (std::int64_t e = 0; e < n; ++e) {
    if (count[e] == 0) continue;
    if (trace) (*trace)[e] += count[e];
    buckets[static_cast<std::int64_t>(std::bit_ceil(static_cast<std::uint64_t>(count[e])))].emplace_back(e, first);
    first += count[e];
  }
  // Every bucket's experts and padded slot positions, built here and copied over at once.
  std::int64_t total = 0;
  for (const auto& [capacity, members] : buckets) total += static_cast<std::int64_t>(members.size()) * (1 + capacity);
  auto host = at::empty({total}, at::kLong);
  std::int64_t* h = host.data_ptr<std::int64_t>();
  std::int64_t next = 0;
  for (const auto& [capacity, members] : buckets) {
    for (const auto& [e, lo] : members) h[next++] = e;
    for (const auto& [e, lo] : members)
      for (std::int64_t i = 0; i < capacity; ++i) h[next++] = i < count[e] ? lo + i : slots;
  }
  auto positions = host.to(u.device());

  std::int64_t offset = 0;
  for (const auto& [capacity, members] : buckets) {
    const auto m = static_cast<std::int64_t>(members.size());
    auto experts = positions.narrow(0, offset, m);
    auto padded = positions.narrow(0, offset + m, m * capacity);
    offset += m * (1 + capacity);
    auto token = slot_token.index_select(0, padded);
    auto x = u.index_select(0, token).view({m, capacity, d_in});
    auto a = A.index_select(0, experts).to(u.scalar_type());  // [m, r, d_in]
    auto b = B.index_select(0, experts).to(u.scalar_type());  // [m, d_out, r]
    auto y = at::bmm(at::bmm(x, a.transpose(1, 2)), b.transpose(1, 2)).view({m * capacity, d_out});
    out.index_add_(0, token, (y * slot_weight.index_select(0, padded).unsqueeze(1)).to(out.scalar_type()));
  }
  return out;
}

at::Tensor view_as_stacked(const std::vector<at::Tensor>& parts) {
  if (parts.empty()) return {};
  const at::Tensor& first = parts[0];
  const std::int64_t step = first.numel();
  for (std::size_t e = 0; e < parts.size(); ++e) {
    const at::Tensor& p = parts[e];
    if (!p.is_contiguous() || !p.is_alias_of(first) || p.sizes() != first.sizes() ||
        p.scalar_type() != first.scalar_type() ||
        p.storage_offset() != first.storage_offset() + static_cast<std::int64_t>(e) * step)
      return {};
  }
  std::vector<std::int64_t> sizes{static_cast<std::int64_t>(parts.size())}, strides{step};
  sizes.insert(sizes.end(), first.sizes().begin(), first.sizes().end());
  strides.insert(strides.end(), first.strides().begin(), first.strides().end());
  return first.as_strided(sizes, strides, first.storage_offset());
}

at::Tensor view_or_stack(const std::vector<at::Tensor>& parts) {
  at::Tensor view = view_as_stacked(parts);
  return view.defined() ? view : at::stack(parts);
}

at::Tensor stack_in_place(std::vector<at::Tensor>& parts) {
  if (parts.empty()) return {};
  at::Tensor stacked = view_or_stack(parts);
  for (std::size_t e = 0; e < parts.size(); ++e) parts[e] = stacked[static_cast<std::int64_t>(e)];
  return stacked;
}

}  // namespace gaggle::route::detail
