#pragma once
// The one hook point of a base model's linear layers (issue #3, item 5).
//
// Every linear layer of a base model is addressable by its Hugging Face module path
// (e.g. "encoder.block.3.layer.1.DenseReluDense.wi_0"). A LinearAdapter attached to
// that path sees the layer's input u and the frozen output W u and returns the
// layer's output. LoRA experts (peft), gated experts (train-gate) and routers (route)
// are all adapters: experts are data keyed by module path, never subclasses of the model.
//
// Adapters that route per example (retrieval, SMEAR) or count real tokens (routing
// traces) also need to know which rows of u are real tokens: before the model runs a
// stack it tells every attached adapter of that stack a TokenContext (set_tokens). The
// default ignores it.
#include <ATen/core/Tensor.h>

#include <atomic>
#include <cstdint>
#include <functional>

namespace gaggle::model {

struct TokenContext {
  enum class Phase {
    encoder,  // the encoder is about to run on input_ids
    encoded,  // the encoder has run: encoder_hidden is its output (told to encoder adapters)
    decoder,  // the decoder is about to run
  };
  Phase phase = Phase::encoder;
  std::uint64_t pass = 0;  // the same for every adapter told about one encode() / decode() call, new for the next
  // The rows this adapter's u will have, batch first: [B, L] with 1 for a real token, 0
  // for padding. For encoder modules and cross-attention k/v: the encoder mask (L = S);
  // for the other decoder modules: the decoder positions (undefined = all real).
  at::Tensor mask;
  // Decoder modules that read decoder rows: token t may depend only on tokens 0..t;
  // `offset` is the position of u's first row (KV cache), 0 = a new sequence starts.
  bool causal = false;
  std::int64_t offset = 0;
  at::Tensor input_ids;  // encoder phase: [B, S]
  // Encoder phase: the encoder's output for these inputs with no adapter attached
  // ([B, S, d], computed on the first call, then reused).
  std::function<at::Tensor()> base_encoding;
  // Encoded phase: the encoder's output [B, S, d]; decoder phase: the encoder rows the
  // decoder attends to (rows of an encoded output, possibly repeated or reordered).
  // Undefined for a decoder-only model.
  at::Tensor encoder_hidden;
  // Decoder-only models, when a new sequence starts (offset 0) and the caller said which
  // positions are the prompt: the base model's (no adapter) final hidden state mean-pooled
  // over each row's prompt tokens, [B, d] (computed on the first call). Empty otherwise;
  // cached steps after it continue the same rows.
  std::function<at::Tensor()> prompt_embedding;
};

// A new TokenContext::pass: one counter for every model in the process, so that a pass
// number is never reused, whichever model starts the call.
inline std::uint64_t next_token_pass() {
  static std::atomic<std::uint64_t> pass{0};
  return ++pass;
}

class LinearAdapter {
 public:
  virtual ~LinearAdapter() = default;
  // u: [..., d_in]; base_out: W u, [..., d_out]. Returns the output, [..., d_out]
  // (typically base_out + a low-rank update).
  virtual at::Tensor apply(const at::Tensor& u, const at::Tensor& base_out) = 0;
  // What the hooked layer calls: the layer's output from u and its frozen weight W
  // [d_out, d_in] (no bias). The default is apply(u, W u). An adapter overrides it where
  // owning the fresh W u saves work: the routed layer adds its update into it in place
  // instead of into a copy (hooked_linear.cpp defines the default).
  virtual at::Tensor forward(const at::Tensor& u, const at::Tensor& weight);
  // Called by the model before apply() runs on a new batch (see TokenContext).
  virtual void set_tokens(const TokenContext& /*context*/) {}
};

}  // namespace gaggle::model
