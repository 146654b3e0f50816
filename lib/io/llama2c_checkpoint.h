#pragma once
// llama2.c checkpoints (karpathy/llama2.c run.c, the legacy "version 0" .bin) converted
// into a Hugging Face LlamaForCausalLM directory, so that gaggle runs one Llama
// implementation only (issue #14). Torch-free: `gaggle debug convert --from llama2c`.
//
// The file: 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, seq_len; a negative vocab_size means the classifier is NOT shared with the
// token embedding), then float32 arrays, every matrix [out, in] row-major:
// token_embedding [V, dim], rms_att [L, dim], wq [L, dim, dim], wk [L, kv, dim],
// wv [L, kv, dim], wo [L, dim, dim], rms_ffn [L, dim], w1 [L, hidden, dim],
// w2 [L, dim, hidden], w3 [L, hidden, dim], rms_final [dim], freq_cis_real and
// freq_cis_imag [seq_len, head_size/2] (unused: RoPE is recomputed), then wcls [V, dim]
// only when unshared. kv = n_kv_heads * head_size, head_size = dim / n_heads.
//
// RoPE: llama2.c rotates adjacent pairs (2i, 2i+1) of each head; Hugging Face rotates the
// halves (j, j + head_size/2). The conversion permutes the rows of wq (per query head)
// and wk (per key/value head) as transformers' convert_llama_weights_to_hf.py does —
// HF row h*hs + j = llama2.c row h*hs + 2j, HF row h*hs + hs/2 + j = row h*hs + 2j + 1 —
// which leaves every logit unchanged.
#include <cstdint>
#include <filesystem>

namespace gaggle::io {

struct Llama2cHeader {
  std::int64_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
  bool shared_classifier = true;  // vocab_size was positive in the file
};

// Reads and validates `bin` (header values, exact file size; the versioned exports that
// start with the magic "ak42" are refused with Error{unsupported}), then writes
// <out_dir>/model.safetensors (F32, HF names) and <out_dir>/config.json (model_type
// "llama", rms_norm_eps 1e-5, rope_theta 10000, bos 1, eos 2, tie_word_embeddings =
// shared classifier), each atomically, creating out_dir. Error{invalid} names the file
// and the problem.
Llama2cHeader convert_llama2c_to_hf(const std::filesystem::path& bin, const std::filesystem::path& out_dir);

}  // namespace gaggle::io
