#pragma once
// Retrieval routing (design.md §2 baselines): one expert per example. Each expert brings
// embeddings of up to ~1000 of its training inputs (train-gate stores them in the bundle
// as "retrieval_embeddings" [n, d_model]: the base model's encoder output, mean-pooled
// over the real tokens). A query is embedded the same way; its expert is the argmax over
// experts of the largest cosine similarity between the query and the expert's rows.
//
// Shared by `gaggle eval --routers retrieval` (in memory) and assembled retrieval models
// (the index stored at assembly, rows normalised once).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gaggle::route {

inline constexpr const char* kRetrievalEmbeddingsTensor = "retrieval_embeddings";  // in a bundle's adapter
inline constexpr const char* kRetrievalFile = "retrieval.safetensors";              // in a routed model
inline constexpr const char* kRetrievalIndexEmbeddings = "embeddings";              // [M, d], unit rows
inline constexpr const char* kRetrievalIndexExpert = "expert";                      // [M] int64

// Every expert's embeddings stacked: rows grouped by expert in expert order.
struct RetrievalIndex {
  at::Tensor embeddings;  // [M, d] float32, every row L2-normalised
  at::Tensor expert;      // [M] int64: the expert each row belongs to (non-decreasing)
  std::int64_t experts = 0;
  std::int64_t width() const;  // d
};

// Stacks per-expert embeddings [n_i, d] (n_i >= 1, one width) and normalises the rows.
// labels name the experts in errors: Error{invalid} for a tensor that is not 2-D, empty,
// or of another width than the first.
RetrievalIndex make_retrieval_index(const std::vector<at::Tensor>& per_expert, const std::vector<std::string>& labels);

// Checks an index read from a file (`where` names it): shapes, owners within [0, experts)
// and non-decreasing, every expert with at least one row. Throws Error{invalid}.
void check_retrieval_index(const RetrievalIndex& index, const std::string& where);

// The mean over the real tokens: hidden [B, S, d], mask [B, S] (1 real, 0 padding;
// undefined: all real) -> [B, d] float32. A row with no real token gives zeros.
at::Tensor mean_pool(const at::Tensor& hidden, const at::Tensor& mask);

// query [B, d] (not necessarily normalised) -> the chosen expert of each row, [B] int64
// on the query's device. Ties go to the lower expert. Throws Error{mismatch} when the
// widths differ (embeddings from another base).
at::Tensor retrieve_experts(const RetrievalIndex& index, const at::Tensor& query);

}  // namespace gaggle::route
