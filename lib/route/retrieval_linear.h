#pragma once
// A retrieval-routed model at run time: every example of a batch runs with the one expert
// retrieval chose for it (route/retrieval.h), on every module.
//
// RetrievalChoice is shared by all modules of a model. The model tells it (through each
// module's adapter, model::TokenContext) when a batch starts:
//   - encoder phase: the example's query is the base model's encoder output (no adapter)
//     mean-pooled over the real tokens; the chosen expert of row b is e_b;
//   - encoded phase: it keeps the routed encoder's output, so that
//   - decoder phase: each row of the encoder output the decoder attends to (scoring may
//     repeat or reorder the encoded rows, one per answer choice) is matched to the encoded
//     row it is an exact copy of, and takes that row's expert;
//   - decoder-only models (no encoder): the query is the prompt embedding the model offers
//     when a sequence starts (TokenContext::prompt_embedding: the base model's final hidden
//     state mean-pooled over the prompt); cached steps keep the rows' experts.
// RetrievalLinear is the adapter of one module: out_b = base_b + B_{e_b} A_{e_b} u_b ·
// lora_scale for batch row b, computed per chosen expert on its rows only (experts no
// example chose are never read; no loop over all N).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "model/linear_hook.h"
#include "route/retrieval.h"

namespace gaggle::route {

class RetrievalChoice {
 public:
  explicit RetrievalChoice(RetrievalIndex index);

  // Acts once per pass (the model tells every adapter; the first one forwards here).
  // Throws Error{invalid} in the decoder phase when the decoder's encoder rows are not
  // rows of the last encoded output (decode without encoding with this model first).
  void observe(const model::TokenContext& context);
  // The expert of each row of the current batch. Throws Error{invalid} before any encode.
  const std::vector<std::int64_t>& rows() const;
  const RetrievalIndex& index() const { return index_; }

 private:
  RetrievalIndex index_;
  std::uint64_t pass_ = 0;
  bool started_ = false;
  std::vector<std::int64_t> rows_;          // the current batch's rows
  std::vector<std::int64_t> encoded_rows_;  // the rows of the last encode
  at::Tensor encoded_;                      // the last encoder output [B, S, d]
};

class RetrievalLinear : public model::LinearAdapter {
 public:
  // A [N, r, d_in], B [N, d_out, r] shared (may be memory-mapped); lora_scale 0 means 1/r.
  // Throws Error{invalid} on inconsistent shapes.
  RetrievalLinear(at::Tensor A, at::Tensor B, std::shared_ptr<RetrievalChoice> choice, double lora_scale = 0);
  // Per-expert factors, A_i [r, d_in] and B_i [d_out, r] (a routed model's expert files,
  // memory-mapped): only the experts a batch retrieves are ever read, nothing is copied.
  RetrievalLinear(std::vector<at::Tensor> a_of, std::vector<at::Tensor> b_of, std::shared_ptr<RetrievalChoice> choice,
                  double lora_scale = 0);

  // u [B, L, d_in] (batch first), base_out [B, L, d_out].
  at::Tensor apply(const at::Tensor& u, const at::Tensor& base_out) override;
  void set_tokens(const model::TokenContext& context) override;
  // Per expert, how many real tokens (the context's mask) ran with it. N entries, must
  // outlive the layer; nullptr stops counting.
  void set_trace(std::vector<std::int64_t>* counts);

 private:
  std::vector<at::Tensor> a_of_, b_of_;  // per expert
  std::shared_ptr<RetrievalChoice> choice_;
  double scale_ = 1;
  at::Tensor mask_;  // [B, L] of the current batch, or undefined
  std::vector<std::int64_t>* trace_ = nullptr;
};

}  // namespace gaggle::route
