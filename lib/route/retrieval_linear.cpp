#include "route/retrieval_linear.h"

#include <ATen/ATen.h>

#include <map>
#include <string>

#include "io/error.h"
#include "route/detail/room.h"

namespace gaggle::route {
namespace {

std::vector<std::int64_t> to_vector(const at::Tensor& t) {
  auto c = t.to(at::kCPU, at::kLong).contiguous();
  return std::vector<std::int64_t>(c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel());
}

}  // namespace

RetrievalChoice::RetrievalChoice(RetrievalIndex index) : index_(std::move(index)) {}

void RetrievalChoice::observe(const model::TokenContext& context) {
  if (started_ && context.pass == pass_) return;
  started_ = true;
  pass_ = context.pass;
  using Phase = model::TokenContext::Phase;
  at::NoGradGuard no_grad;
  if (context.phase == Phase::encoder) {
    if (!context.base_encoding)
      throw_error(ErrorCode::invalid, kRoom, "retrieval: the model gave no base encoding of its inputs");
    rows_ = to_vector(retrieve_experts(index_, mean_pool(context.base_encoding(), context.mask)));
    encoded_rows_ = rows_;
    encoded_ = at::Tensor();
  } else if (context.phase == Phase::encoded) {
    encoded_ = context.encoder_hidden;
  } else if (!context.encoder_hidden.defined()) {
    // A decoder-only model: the query is its prompt's embedding, given when a sequence
    // starts; cached steps after it continue the same rows.
    if (context.prompt_embedding) {
      rows_ = to_vector(retrieve_experts(index_, context.prompt_embedding()));
    } else if (context.offset == 0 || rows_.empty()) {
      throw_error(ErrorCode::invalid, kRoom, "retrieval: a decoder-only model ran a new sequence without saying which tokens are its prompt",
                  "score and generate through model::BaseModel, which passes the prompt");
    }
  } else {
    const at::Tensor& enc = context.encoder_hidden;
    if (!encoded_.defined() || !enc.defined())
      throw_error(ErrorCode::invalid, kRoom, "retrieval: the decoder runs before the encoder",
                  "encode the inputs with this model first");
    if (enc.is_same(encoded_)) {
      rows_ = encoded_rows_;
      return;
    }
    // Each decoder row is an exact copy of an encoded row (scoring repeats each input's
    // encoding once per answer choice): find it, starting where the last row matched.
    const std::int64_t n = encoded_.size(0), b_count = enc.size(0);
    if (enc.dim() != encoded_.dim() || enc.size(1) != encoded_.size(1) || enc.size(2) != encoded_.size(2))
      throw_error(ErrorCode::invalid, kRoom, "retrieval: the decoder's encoder rows are not rows of the last encoding",
                  "encode the inputs with this model before decoding");
    auto encoded = encoded_.to(enc.device());
    std::vector<std::int64_t> rows(b_count);
    std::int64_t guess = 0;
    for (std::int64_t b = 0; b < b_count; ++b) {
      std::int64_t found = -1;
      for (std::int64_t i = 0; i < n && found < 0; ++i) {
        const std::int64_t candidate = (guess + i) % n;
        if (at::equal(enc[b], encoded[candidate])) found = candidate;
      }
      if (found < 0)
        throw_error(ErrorCode::invalid, kRoom,
                    "retrieval: decoder row " + std::to_string(b) + " attends to an encoding the last encode() did not produce",
                    "encode the inputs with this model before decoding");
      rows[b] = encoded_rows_[found];
      guess = found;
    }
    rows_ = std::move(rows);
  }
}

const std::vector<std::int64_t>& RetrievalChoice::rows() const {
  if (!started_) throw_error(ErrorCode::invalid, kRoom, "retrieval: no batch has been encoded yet");
  return rows_;
}

RetrievalLinear::RetrievalLinear(at::Tensor A, at::Tensor B, std::shared_ptr<RetrievalChoice> choice, double lora_scale)
    : RetrievalLinear(
          [&] {
            if (!A.defined() || !B.defined() || A.dim() != 3 || B.dim() != 3)
              throw_error(ErrorCode::invalid, kRoom, "retrieval linear: need A [N, r, d_in], B [N, d_out, r] and a choice");
            return A.unbind(0);
          }(),
          B.unbind(0), std::move(choice), lora_scale) {}

RetrievalLinear::RetrievalLinear(std::vector<at::Tensor> a_of, std::vector<at::Tensor> b_of,
                                 std::shared_ptr<RetrievalChoice> choice, double lora_scale)
    : a_of_(std::move(a_of)), b_of_(std::move(b_of)), choice_(std::move(choice)) {
  bool ok = !a_of_.empty() && a_of_.size() == b_of_.size() && choice_;
  for (std::size_t i = 0; ok && i < a_of_.size(); ++i)
    ok = a_of_[i].defined() && b_of_[i].defined() && a_of_[i].dim() == 2 && b_of_[i].dim() == 2 &&
         a_of_[i].sizes() == a_of_[0].sizes() && b_of_[i].sizes() == b_of_[0].sizes() &&
         a_of_[i].size(0) == b_of_[i].size(1);
  if (!ok) throw_error(ErrorCode::invalid, kRoom, "retrieval linear: need A [N, r, d_in], B [N, d_out, r] and a choice");
  const auto n = static_cast<std::int64_t>(a_of_.size());
  if (choice_->index().experts != n)
    throw_error(ErrorCode::invalid, kRoom,
                "retrieval linear: " + std::to_string(n) + " experts, the retrieval index has " +
                    std::to_string(choice_->index().experts));
  scale_ = lora_scale > 0 ? lora_scale : 1.0 / static_cast<double>(a_of_[0].size(0));
}

void RetrievalLinear::set_tokens(const model::TokenContext& context) {
  mask_ = context.mask;
  choice_->observe(context);
}

void RetrievalLinear::set_trace(std::vector<std::int64_t>* counts) {
  if (counts && counts->size() != a_of_.size())
    throw_error(ErrorCode::invalid, kRoom, "retrieval linear: the trace holds " + std::to_string(counts->size()) +
                                               " counts for " + std::to_string(a_of_.size()) + " experts");
  trace_ = counts;
}

at::Tensor RetrievalLinear::apply(const at::Tensor& u, const at::Tensor& base_out) {
  const auto& rows = choice_->rows();
  const std::int64_t d_in = a_of_[0].size(1);
  if (u.dim() < 2 || u.size(0) != static_cast<std::int64_t>(rows.size()) || u.size(-1) != d_in)
    throw_error(ErrorCode::invalid, kRoom,
                "retrieval linear: input of " + std::to_string(u.dim() ? u.size(0) : 0) + " rows of width " +
                    std::to_string(u.size(-1)) + ", expected " + std::to_string(rows.size()) + " rows (the batch) of width " +
                    std::to_string(d_in));
  std::map<std::int64_t, std::vector<std::int64_t>> groups;  // expert -> its batch rows
  for (std::size_t b = 0; b < rows.size(); ++b) groups[rows[b]].push_back(static_cast<std::int64_t>(b));
  if (trace_) {
    const bool masked = mask_.defined() && mask_.dim() == 2 && mask_.size(0) == u.size(0) &&
                        mask_.numel() * u.size(-1) == u.numel();
    std::vector<std::int64_t> real(rows.size(), u.numel() / std::max<std::int64_t>(1, u.size(0) * u.size(-1)));
    if (masked) real = to_vector((mask_ != 0).sum(1));
    for (std::size_t b = 0; b < rows.size(); ++b) (*trace_)[rows[b]] += real[b];
  }
  const auto dtype = u.scalar_type();
  auto update = [&](std::int64_t e, const at::Tensor& x) {
    return at::matmul(at::matmul(x, a_of_[e].to(dtype).t()), b_of_[e].to(dtype).t()) * scale_;
  };
  if (groups.size() == 1) return base_out + update(groups.begin()->first, u);
  at::Tensor out = base_out;
  for (const auto& [e, batch_rows] : groups) {
    auto index = at::tensor(batch_rows, at::kLong).to(u.device());
    out = out.index_add(0, index, update(e, u.index_select(0, index)).to(out.scalar_type()));
  }
  return out;
}

}  // namespace gaggle::route
