#include "model/t5.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/nn/init.h>
#include <torch/utils.h>

#include <cmath>

#include "io/error.h"
#include "model/detail/t5_layers.h"

namespace gaggle::model {

using detail::T5LinearImpl;

namespace {

// Which rows a linear's input holds: encoder tokens (encoder modules, and the decoder's
// cross-attention k and v, which read the encoder's output) or decoder tokens.
enum class Reads { encoder_rows_in_encoder, encoder_rows_in_decoder, decoder_rows };

Reads reads_of(const std::string& name) {
  if (name.rfind("encoder.", 0) == 0) return Reads::encoder_rows_in_encoder;
  if (name.find(".EncDecAttention.k") != std::string::npos || name.find(".EncDecAttention.v") != std::string::npos)
    return Reads::encoder_rows_in_decoder;
  return Reads::decoder_rows;
}

using Linears = std::map<std::string, std::shared_ptr<T5LinearImpl>>;

bool any_adapter(const Linears& linears) {
  for (const auto& [name, linear] : linears)
    if (linear->adapter) return true;
  return false;
}

// Tells the adapters of the encoder (linear_hook.h: TokenContext).
void tell_encoder(const Linears& linears, const TokenContext& context) {
  for (const auto& [name, linear] : linears)
    if (linear->adapter && reads_of(name) == Reads::encoder_rows_in_encoder) {
      auto adapter = linear->adapter;  // (set_tokens may swap adapters for a moment)
      adapter->set_tokens(context);
    }
}

// Tells the adapters of the decoder: cross-attention k/v read encoder rows, the others
// decoder rows (causal, from position `offset`).
void tell_decoder(const Linears& linears, const at::Tensor& encoder_mask, const at::Tensor& encoder_hidden,
                  const at::Tensor& decoder_mask, std::int64_t offset) {
  if (!any_adapter(linears)) return;
  TokenContext rows;
  rows.phase = TokenContext::Phase::decoder;
  rows.pass = next_token_pass();
  rows.encoder_hidden = encoder_hidden;
  TokenContext cross = rows;
  cross.mask = encoder_mask;
  rows.mask = decoder_mask;
  rows.causal = true;
  rows.offset = offset;
  for (const auto& [name, linear] : linears) {
    if (!linear->adapter) continue;
    const Reads reads = reads_of(name);
    if (reads == Reads::encoder_rows_in_encoder) continue;
    auto adapter = linear->adapter;
    adapter->set_tokens(reads == Reads::encoder_rows_in_decoder ? cross : rows);
  }
}

// Detaches the encoder's adapters for its lifetime (the base encoding of TokenContext).
class EncoderAdaptersOff {
 public:
  explicit EncoderAdaptersOff(const Linears& linears) {
    for (const auto& [name, linear] : linears)
      if (linear->adapter && reads_of(name) == Reads::encoder_rows_in_encoder)
        saved_.emplace_back(linear.get(), std::move(linear->adapter));
  }
  ~EncoderAdaptersOff() {
    for (auto& [linear, adapter] : saved_) linear->adapter = std::move(adapter);
  }
  EncoderAdaptersOff(const EncoderAdaptersOff&) = delete;
  EncoderAdaptersOff& operator=(const EncoderAdaptersOff&) = delete;

 private:
  std::vector<std::pair<T5LinearImpl*, std::shared_ptr<LinearAdapter>>> saved_;
};

}  // namespace

T5ModelImpl::T5ModelImpl(const T5Config& config) : config_(config) {
  shared_ = register_module("shared", std::make_shared<detail::T5EmbeddingImpl>(config.vocab_size, config.d_model));
  encoder_ = register_module("encoder", std::make_shared<detail::T5StackImpl>(config, false));
  decoder_ = register_module("decoder", std::make_shared<detail::T5StackImpl>(config, true));
  if (!config.tie_word_embeddings)
    lm_head_ = register_module("lm_head", std::make_shared<T5LinearImpl>(config.d_model, config.vocab_size));
  auto modules = named_modules("", /*include_self=*/false);
  for (const auto& name : t5_linear_names(config)) {
    // "encoder.block.3.layer.1.DenseReluDense.wi_0" -> the registered submodule.
    auto* module = modules.find(name);
    auto linear = module ? std::dynamic_pointer_cast<T5LinearImpl>(*module) : nullptr;
    if (!linear) throw_error(ErrorCode::invalid, "model", "internal: linear '" + name + "' not registered");
    linears_[name] = linear;
  }
}

std::int64_t T5ModelImpl::num_parameters() const {
  std::int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

at::Device T5ModelImpl::device() const { return shared_->weight.device(); }

at::Tensor T5ModelImpl::encode(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  at::Tensor ids = input_ids.to(device(), at::kLong);
  at::Tensor mask = attention_mask.to(device());
  if (!any_adapter(linears_)) return encoder_->forward_encoder(shared_->forward(ids), mask);
  TokenContext context;
  context.phase = TokenContext::Phase::encoder;
  context.pass = next_token_pass();
  context.mask = mask;
  context.input_ids = ids;
  auto cached = std::make_shared<at::Tensor>();
  context.base_encoding = [this, ids, mask, cached]() {
    if (!cached->defined()) {
      EncoderAdaptersOff off(linears_);
      *cached = encoder_->forward_encoder(shared_->forward(ids), mask);
    }
    return *cached;
  };
  tell_encoder(linears_, context);
  at::Tensor out = encoder_->forward_encoder(shared_->forward(ids), mask);
  context.phase = TokenContext::Phase::encoded;
  context.pass = next_token_pass();
  context.base_encoding = nullptr;
  context.encoder_hidden = out;
  tell_encoder(linears_, context);
  return out;
}

at::Tensor T5ModelImpl::lm_logits(const at::Tensor& decoder_hidden) {
  if (config_.tie_word_embeddings)
    return at::linear(decoder_hidden * std::pow(static_cast<double>(config_.d_model), -0.5), shared_->weight);
  return lm_head_->forward(decoder_hidden);
}

at::Tensor T5ModelImpl::decode(const at::Tensor& decoder_input_ids, const at::Tensor& encoder_hidden,
                               const at::Tensor& attention_mask, KvCache* cache) {
  at::Tensor ids = decoder_input_ids.to(device(), at::kLong);
  at::Tensor mask = attention_mask.to(device());
  at::Tensor enc = encoder_hidden.to(device());
  tell_decoder(linears_, mask, enc, {}, cache ? cache->length : 0);
  at::Tensor h = decoder_->forward_decoder(shared_->forward(ids), enc, mask, cache);
  return lm_logits(h);
}

at::Tensor T5ModelImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                const at::Tensor& decoder_input_ids) {
  return decode(decoder_input_ids, encode(input_ids, attention_mask), attention_mask, nullptr);
}

at::Tensor shift_right(const at::Tensor& labels, std::int64_t decoder_start_token_id, std::int64_t pad_token_id) {
  at::Tensor out = at::empty_like(labels);
  out.select(1, 0).fill_(decoder_start_token_id);
  if (labels.size(1) > 1) out.slice(1, 1).copy_(labels.slice(1, 0, labels.size(1) - 1));
  return out.masked_fill(out == -100, pad_token_id);
}

at::Tensor T5ModelImpl::token_nll_from_encoded(const at::Tensor& encoder_hidden, const at::Tensor& attention_mask,
                                               const at::Tensor& labels) {
  at::Tensor lab = labels.to(device(), at::kLong);
  // As decode(), telling the adapters which decoder positions are real (labels != -100).
  at::Tensor ids = shift_right(lab, config_.decoder_start_token_id, config_.pad_token_id);
  at::Tensor mask = attention_mask.to(device());
  at::Tensor enc = encoder_hidden.to(device());
  tell_decoder(linears_, mask, enc, lab != -100, 0);
  at::Tensor logits = lm_logits(decoder_->forward_decoder(shared_->forward(ids), enc, mask, nullptr));
  at::Tensor nll = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}), lab.reshape({-1}), {},
                                          at::Reduction::None, -100);
  return nll.view(lab.sizes());
}

at::Tensor T5ModelImpl::token_nll(const at::Tensor& input_ids, const at::Tensor& attention_mask, const at::Tensor& labels) {
  return token_nll_from_encoded(encode(input_ids, attention_mask), attention_mask, labels);
}

namespace {

// One greedy loop; `step` returns the logits of the last position given all tokens so
// far and which of them are real decoder positions ([B, positions]: 0 once a row has
// finished, where only padding is forced; the adapters are told, see linear_hook.h).
template <typename Step>
at::Tensor greedy_loop(const T5Config& c, std::int64_t batch, at::Device device, std::int64_t max_new_tokens,
                       bool stop_at_eos, Step step) {
  at::Tensor tokens = at::full({batch, 1}, c.decoder_start_token_id, at::TensorOptions().dtype(at::kLong).device(device));
  at::Tensor unfinished = at::ones({batch}, tokens.options());
  at::Tensor real = unfinished.unsqueeze(1);
  for (std::int64_t i = 0; i < max_new_tokens; ++i) {
    at::Tensor next = step(tokens, real).argmax(-1);  // [B]
    if (stop_at_eos) {
      next = next * unfinished + c.pad_token_id * (1 - unfinished);
      unfinished = unfinished * (next != c.eos_token_id).to(at::kLong);
    }
    tokens = at::cat({tokens, next.unsqueeze(1)}, 1);
    real = at::cat({real, unfinished.unsqueeze(1)}, 1);
    if (stop_at_eos && unfinished.max().item<std::int64_t>() == 0) break;
  }
  return tokens.to(at::kCPU);
}

}  // namespace

at::Tensor T5ModelImpl::greedy(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                               std::int64_t max_new_tokens, bool stop_at_eos) {
  c10::InferenceMode guard;
  at::Tensor enc = encode(input_ids, attention_mask);
  at::Tensor mask = attention_mask.to(device());
  KvCache cache;
  return greedy_loop(config_, input_ids.size(0), device(), max_new_tokens, stop_at_eos,
                     [&](const at::Tensor& tokens, const at::Tensor& real) {
                       // As decode(), telling the adapters which new positions are real.
                       at::Tensor last = tokens.slice(1, tokens.size(1) - 1);
                       tell_decoder(linears_, mask, enc, real.slice(1, real.size(1) - 1), cache.length);
                       return lm_logits(decoder_->forward_decoder(shared_->forward(last), enc, mask, &cache)).select(1, 0);
                     });
}

at::Tensor T5ModelImpl::greedy_uncached(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                        std::int64_t max_new_tokens, bool stop_at_eos) {
  c10::InferenceMode guard;
  at::Tensor enc = encode(input_ids, attention_mask);
  at::Tensor mask = attention_mask.to(device());
  return greedy_loop(config_, input_ids.size(0), device(), max_new_tokens, stop_at_eos,
                     [&](const at::Tensor& tokens, const at::Tensor& real) {
                       tell_decoder(linears_, mask, enc, real, 0);
                       at::Tensor logits = lm_logits(decoder_->forward_decoder(shared_->forward(tokens), enc, mask, nullptr));
                       return logits.select(1, logits.size(1) - 1);
                     });
}

std::vector<std::string> T5ModelImpl::linear_names() const { return t5_linear_names(config_); }

detail::HookedLinearImpl& T5ModelImpl::linear_at(const std::string& linear_name) const {
  auto it = linears_.find(linear_name);
  if (it == linears_.end())
    throw_error(ErrorCode::not_found, "model", "no linear layer '" + linear_name + "' in this T5 model",
                "names look like encoder.block.0.layer.0.SelfAttention.q; 'gaggle inspect BASE_DIR' lists them");
  return *it->second;
}

void T5ModelImpl::set_adapter(const std::string& linear_name, std::shared_ptr<LinearAdapter> adapter) {
  linear_at(linear_name).adapter = std::move(adapter);
}

std::shared_ptr<LinearAdapter> T5ModelImpl::adapter(const std::string& linear_name) const {
  return linear_at(linear_name).adapter;
}

void T5ModelImpl::clear_adapters() {
  for (auto& [name, linear] : linears_) linear->adapter.reset();
}

at::Tensor T5ModelImpl::linear_weight(const std::string& linear_name) const { return linear_at(linear_name).weight; }

at::Tensor T5ModelImpl::shared_weight() const { return shared_->weight; }

at::Tensor T5ModelImpl::lm_head_weight() const { return lm_head_ ? lm_head_->weight : shared_->weight; }

T5Model make_t5(const T5Config& c) {
  T5Model model(c);
  at::NoGradGuard no_grad;
  const double d_model = static_cast<double>(c.d_model);
  for (auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    at::Tensor& p = item.value();
    auto ends_with = [&](const std::string& s) {
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    double std_dev = 1.0;  // shared, lm_head (HF _init_weights, initializer_factor 1)
    if (ends_with("layer_norm.weight")) {
      p.fill_(1.0);
      continue;
    }
    if (ends_with(".q.weight")) std_dev = 1.0 / std::sqrt(d_model * static_cast<double>(c.d_kv));
    else if (ends_with(".k.weight") || ends_with(".v.weight")) std_dev = 1.0 / std::sqrt(d_model);
    else if (ends_with(".o.weight")) std_dev = 1.0 / std::sqrt(static_cast<double>(c.inner_dim()));
    else if (ends_with("relative_attention_bias.weight")) std_dev = 1.0 / std::sqrt(d_model);
    else if (ends_with(".wo.weight")) std_dev = 1.0 / std::sqrt(static_cast<double>(c.d_ff));
    else if (ends_with(".wi.weight") || ends_with(".wi_0.weight") || ends_with(".wi_1.weight")) std_dev = 1.0 / std::sqrt(d_model);
    p.normal_(0.0, std_dev);
  }
  return model;
}

}  // namespace gaggle::model
