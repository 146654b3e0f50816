#include "model/llama.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <limits>

#include "io/error.h"
#include "model/detail/llama_layers.h"

namespace gaggle::model {

using detail::LlamaLinearImpl;

namespace {

// Detaches every adapter for its lifetime (the base model's hidden state of TokenContext).
class AdaptersOff {
 public:
  explicit AdaptersOff(const std::map<std::string, std::shared_ptr<detail::HookedLinearImpl>>& linears) {
    for (const auto& [name, linear] : linears)
      if (linear->adapter) saved_.emplace_back(linear.get(), std::move(linear->adapter));
  }
  ~AdaptersOff() {
    for (auto& [linear, adapter] : saved_) linear->adapter = std::move(adapter);
  }
  AdaptersOff(const AdaptersOff&) = delete;
  AdaptersOff& operator=(const AdaptersOff&) = delete;

 private:
  std::vector<std::pair<detail::HookedLinearImpl*, std::shared_ptr<LinearAdapter>>> saved_;
};

}  // namespace

LlamaModelImpl::LlamaModelImpl(const LlamaConfig& config) : config_(config) {
  model_ = register_module("model", std::make_shared<detail::LlamaBackboneImpl>(config));
  if (!config.tie_word_embeddings)
    lm_head_ = register_module("lm_head", std::make_shared<LlamaLinearImpl>(config.hidden_size, config.vocab_size));
  auto modules = named_modules("", /*include_self=*/false);
  for (const auto& name : llama_linear_names(config)) {
    auto* module = modules.find(name);
    auto linear = module ? std::dynamic_pointer_cast<LlamaLinearImpl>(*module) : nullptr;
    if (!linear) throw_error(ErrorCode::invalid, "model", "internal: linear '" + name + "' not registered");
    linears_[name] = linear;
  }
}

std::int64_t LlamaModelImpl::num_parameters() const {
  std::int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

at::Device LlamaModelImpl::device() const { return model_->embed_tokens->weight.device(); }

at::Tensor LlamaModelImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                   const at::Tensor& position_ids, LlamaKvCache* cache, const at::Tensor& prompt_mask) {
  return lm_logits(hidden(input_ids, attention_mask, position_ids, cache, prompt_mask));
}

at::Tensor LlamaModelImpl::lm_logits(const at::Tensor& h) const {
  return lm_head_ ? lm_head_->forward(h) : at::linear(h, model_->embed_tokens->weight);
}

at::Tensor LlamaModelImpl::hidden(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                  const at::Tensor& position_ids, LlamaKvCache* cache, const at::Tensor& prompt_mask) {
  at::Tensor ids = input_ids.to(device(), at::kLong);
  const std::int64_t batch = ids.size(0), len = ids.size(1);
  const std::int64_t offset = cache ? cache->length : 0;
  auto long_opts = at::TensorOptions().dtype(at::kLong).device(device());
  at::Tensor mask = attention_mask.defined() ? attention_mask.to(device(), at::kLong) : at::ones({batch, len}, long_opts);
  at::Tensor key_mask = mask;
  if (offset > 0) {
    at::Tensor past = cache->mask.defined() ? cache->mask : at::ones({batch, offset}, long_opts);
    key_mask = at::cat({past, mask}, 1);
  }
  at::Tensor positions = position_ids.defined() ? position_ids.to(device(), at::kLong)
                                                : at::arange(offset, offset + len, long_opts).unsqueeze(0).expand({batch, len});

  // Tell the adapters which rows they will see (linear_hook.h): causal decoder rows.
  TokenContext context;
  context.phase = TokenContext::Phase::decoder;
  context.pass = next_token_pass();
  context.mask = attention_mask.defined() ? mask : at::Tensor();
  context.causal = true;
  context.offset = offset;
  bool adapted = false;
  for (const auto& [name, linear] : linears_) adapted = adapted || linear->adapter;
  if (adapted && prompt_mask.defined() && offset == 0) {
    // The retrieval query: the base model (adapters off) over the same rows, mean-pooled
    // over the prompt; causal attention makes it independent of what follows the prompt.
    auto cached = std::make_shared<at::Tensor>();
    at::Tensor prompt = prompt_mask.to(device(), at::kFloat).unsqueeze(-1);
    context.prompt_embedding = [this, ids, attention_mask, positions, prompt, cached]() {
      if (!cached->defined()) {
        AdaptersOff off(linears_);
        at::Tensor base = hidden(ids, attention_mask, positions);
        *cached = (base * prompt).sum(1) / prompt.sum(1).clamp_min(1.0);
      }
      return *cached;
    };
  }
  for (const auto& [name, linear] : linears_)
    if (linear->adapter) {
      auto adapter = linear->adapter;  // (set_tokens may swap adapters for a moment)
      adapter->set_tokens(context);
    }

  auto [cos, sin] = detail::rotary_cos_sin(positions, config_);
  // HF's additive mask: finfo(float32).min on future keys and on padded keys. (HF adds the
  // two, giving -inf where both apply; one min is the same wherever a real key is visible.)
  at::Tensor qpos = at::arange(offset, offset + len, long_opts).unsqueeze(1);
  at::Tensor kpos = at::arange(0, offset + len, long_opts).unsqueeze(0);
  at::Tensor allowed = (kpos <= qpos).unsqueeze(0) & (key_mask != 0).unsqueeze(1);  // [B, S, past + S]
  at::Tensor bias = at::where(allowed, 0.0, static_cast<double>(std::numeric_limits<float>::lowest()))
                        .to(at::kFloat)
                        .unsqueeze(1);

  const std::size_t n = model_->layers.size();
  if (cache && cache->key.size() != n) {
    cache->key.assign(n, {});
    cache->value.assign(n, {});
  }
  at::Tensor h = model_->embed_tokens->forward(ids);
  for (std::size_t i = 0; i < n; ++i)
    h = model_->layers[i]->forward(h, cos, sin, bias, cache ? &cache->key[i] : nullptr, cache ? &cache->value[i] : nullptr);
  h = model_->norm->forward(h);
  if (cache) {
    cache->length = offset + len;
    cache->mask = key_mask;
  }
  return h;
}

template <typename Step>
at::Tensor LlamaModelImpl::greedy_loop(const at::Tensor& prompt, std::int64_t max_new_tokens, bool stop_at_eos, Step step) {
  c10::InferenceMode guard;
  at::Tensor tokens = prompt.to(device(), at::kLong).reshape({1, -1});
  if (tokens.size(1) == 0)
    throw_error(ErrorCode::invalid, "model", "greedy decoding needs a prompt of at least one token", "start with bos");
  std::vector<std::int64_t> out;
  for (std::int64_t i = 0; i < max_new_tokens; ++i) {
    const at::Tensor logits = step(tokens);
    const std::int64_t next = logits.argmax(-1).item<std::int64_t>();
    out.push_back(next);
    if (stop_at_eos && next == config_.eos_token_id) break;
    tokens = at::cat({tokens, at::full({1, 1}, next, tokens.options())}, 1);
  }
  return at::tensor(out, at::kLong);
}

at::Tensor LlamaModelImpl::greedy(const at::Tensor& prompt, std::int64_t max_new_tokens, bool stop_at_eos) {
  LlamaKvCache cache;
  return greedy_loop(prompt, max_new_tokens, stop_at_eos, [&](const at::Tensor& tokens) {
    at::Tensor fresh = tokens.slice(1, cache.length);  // the whole prompt first, then one token a step
    // The first step is the prompt: adapters that route per example see it (prompt_mask).
    at::Tensor prompt_mask = cache.length == 0 ? at::ones_like(fresh) : at::Tensor();
    at::Tensor logits = forward(fresh, {}, {}, &cache, prompt_mask);
    return logits.select(1, logits.size(1) - 1).squeeze(0);
  });
}

at::Tensor LlamaModelImpl::greedy_uncached(const at::Tensor& prompt, std::int64_t max_new_tokens, bool stop_at_eos) {
  const std::int64_t prompt_len = prompt.numel();
  return greedy_loop(prompt, max_new_tokens, stop_at_eos, [&](const at::Tensor& tokens) {
    at::Tensor prompt_mask = at::zeros_like(tokens);
    prompt_mask.slice(1, 0, prompt_len).fill_(1);
    at::Tensor logits = forward(tokens, {}, {}, nullptr, prompt_mask);
    return logits.select(1, logits.size(1) - 1).squeeze(0);
  });
}

std::vector<std::string> LlamaModelImpl::linear_names() const { return llama_linear_names(config_); }

detail::HookedLinearImpl& LlamaModelImpl::linear_at(const std::string& linear_name) const {
  auto it = linears_.find(linear_name);
  if (it == linears_.end())
    throw_error(ErrorCode::not_found, "model", "no linear layer '" + linear_name + "' in this Llama model",
                "names look like model.layers.0.self_attn.q_proj; 'gaggle inspect BASE_DIR' lists them");
  return *it->second;
}

void LlamaModelImpl::set_adapter(const std::string& linear_name, std::shared_ptr<LinearAdapter> adapter) {
  linear_at(linear_name).adapter = std::move(adapter);
}

std::shared_ptr<LinearAdapter> LlamaModelImpl::adapter(const std::string& linear_name) const {
  return linear_at(linear_name).adapter;
}

void LlamaModelImpl::clear_adapters() {
  for (auto& [name, linear] : linears_) linear->adapter.reset();
}

at::Tensor LlamaModelImpl::linear_weight(const std::string& linear_name) const { return linear_at(linear_name).weight; }

at::Tensor LlamaModelImpl::embed_weight() const { return model_->embed_tokens->weight; }

at::Tensor LlamaModelImpl::lm_head_weight() const { return lm_head_ ? lm_head_->weight : model_->embed_tokens->weight; }

LlamaModel make_llama(const LlamaConfig& c, double initializer_range) {
  LlamaModel model(c);
  at::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    at::Tensor& p = item.value();
    if (name.find("norm") != std::string::npos) p.fill_(1.0);  // input_layernorm, post_attention_layernorm, model.norm
    else p.normal_(0.0, initializer_range);
  }
  return model;
}

}  // namespace gaggle::model
