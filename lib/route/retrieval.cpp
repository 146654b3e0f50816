#include "route/retrieval.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>

#include "io/error.h"
#include "route/detail/room.h"

namespace gaggle::route {
namespace {

at::Tensor normalise_rows(const at::Tensor& x) { return x / x.norm(2, {1}, true).clamp_min(1e-12); }

}  // namespace

std::int64_t RetrievalIndex::width() const { return embeddings.defined() ? embeddings.size(1) : 0; }

RetrievalIndex make_retrieval_index(const std::vector<at::Tensor>& per_expert, const std::vector<std::string>& labels) {
  if (per_expert.empty()) throw_error(ErrorCode::invalid, kRoom, "retrieval: no experts");
  std::vector<at::Tensor> rows, owner;
  std::int64_t d = -1;
  for (std::size_t i = 0; i < per_expert.size(); ++i) {
    const auto& e = per_expert[i];
    const std::string who = i < labels.size() ? labels[i] : "expert " + std::to_string(i);
    if (!e.defined() || e.dim() != 2 || e.size(0) < 1 || e.size(1) < 1)
      throw_error(ErrorCode::invalid, kRoom,
                  who + ": '" + kRetrievalEmbeddingsTensor + "' must be [n, d_model] with n >= 1",
                  "train-gate writes them: gaggle train-gate");
    if (d < 0) d = e.size(1);
    if (e.size(1) != d)
      throw_error(ErrorCode::invalid, kRoom,
                  who + ": retrieval embeddings have width " + std::to_string(e.size(1)) + ", the first expert's " +
                      std::to_string(d),
                  "every expert's embeddings must come from the same base");
    rows.push_back(normalise_rows(e.to(at::kFloat)));
    owner.push_back(at::full({e.size(0)}, static_cast<std::int64_t>(i), at::TensorOptions().dtype(at::kLong)));
  }
  RetrievalIndex index;
  index.embeddings = at::cat(rows, 0).contiguous();
  index.expert = at::cat(owner, 0).to(index.embeddings.device()).contiguous();
  index.experts = static_cast<std::int64_t>(per_expert.size());
  return index;
}

void check_retrieval_index(const RetrievalIndex& index, const std::string& where) {
  auto fail = [&](const std::string& what) {
    throw_error(ErrorCode::invalid, kRoom, where + ": " + what, "the routed model is damaged: assemble it again");
  };
  if (!index.embeddings.defined() || index.embeddings.dim() != 2 || index.embeddings.size(0) < 1)
    fail(std::string("tensor '") + kRetrievalIndexEmbeddings + "' must be [M, d] with M >= 1");
  if (!index.expert.defined() || index.expert.dim() != 1 || index.expert.size(0) != index.embeddings.size(0) ||
      index.expert.scalar_type() != at::kLong)
    fail(std::string("tensor '") + kRetrievalIndexExpert + "' must be int64 [" +
         std::to_string(index.embeddings.size(0)) + "]");
  auto owner = index.expert.cpu().contiguous();
  const std::int64_t* o = owner.data_ptr<std::int64_t>();
  std::int64_t next = 0;  // every expert from 0 to experts-1 in order, each at least once
  for (std::int64_t i = 0; i < owner.size(0); ++i) {
    if (o[i] == next) ++next;
    else if (o[i] != next - 1) fail("row " + std::to_string(i) + " belongs to expert " + std::to_string(o[i]) + ", out of order");
  }
  if (next != index.experts)
    fail("rows cover " + std::to_string(next) + " experts, the assembly lists " + std::to_string(index.experts));
}

at::Tensor mean_pool(const at::Tensor& hidden, const at::Tensor& mask) {
  auto h = hidden.to(at::kFloat);
  if (!mask.defined()) return h.mean(1);
  auto m = mask.to(h.device(), at::kFloat).unsqueeze(-1);  // [B, S, 1]
  return (h * m).sum(1) / m.sum(1).clamp_min(1.0);
}

at::Tensor retrieve_experts(const RetrievalIndex& index, const at::Tensor& query) {
  if (query.dim() != 2 || query.size(1) != index.width())
    throw_error(ErrorCode::mismatch, kRoom,
                "retrieval: the query has width " + std::to_string(query.size(-1)) + ", the experts' embeddings " +
                    std::to_string(index.width()),
                "the embeddings must come from this base (train-gate computes them)");
  auto q = normalise_rows(query.to(at::kFloat));
  auto embeddings = index.embeddings.to(q.device());
  auto sims = at::matmul(q, embeddings.t());  // [B, M] cosine similarities
  // Each expert's largest similarity: its rows are contiguous; gather them into
  // [B, N, n_max] (short experts padded with a column of -inf) and take the max.
  auto counts = at::bincount(index.expert.to(at::kCPU), {}, index.experts).contiguous();
  const std::int64_t* count = counts.data_ptr<std::int64_t>();
  const std::int64_t m = sims.size(1);
  std::int64_t n_max = 1;
  for (std::int64_t e = 0; e < index.experts; ++e) n_max = std::max(n_max, count[e]);
  std::vector<std::int64_t> gather(static_cast<std::size_t>(index.experts * n_max), m);
  for (std::int64_t e = 0, row = 0; e < index.experts; ++e)
    for (std::int64_t j = 0; j < count[e]; ++j) gather[static_cast<std::size_t>(e * n_max + j)] = row++;
  auto padded = at::cat({sims, at::full({sims.size(0), 1}, -std::numeric_limits<float>::infinity(), sims.options())}, 1);
  auto columns = at::tensor(gather, at::kLong).to(q.device());
  auto best = padded.index_select(1, columns).view({q.size(0), index.experts, n_max}).amax(2);  // [B, N]
  return best.argmax(1);
}

}  // namespace gaggle::route
