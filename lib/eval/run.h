#pragma once
// One evaluation run, as `gaggle eval` does it (issue #8, items 1–3): load the base once,
// build every requested method in memory (the base alone, named experts, each router
// over a pool, every pool expert alone, a multitask expert), score them all on the same
// examples, derive Oracle and Best individual, and fill the report's meta.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "eval/evaluator.h"
#include "eval/report.h"

namespace gaggle::eval {

struct RunOptions {
  std::filesystem::path base_dir;                 // Hugging Face T5 / Llama checkpoint (+ its tokenizer); empty with
                                                  // model_dirs: the base recorded in the first assembly.json
  std::vector<std::filesystem::path> model_dirs;  // --model: routed models made by `gaggle assemble`
  std::vector<std::filesystem::path> tasks;       // task files and benchmark directories
  std::vector<std::string> experts;               // --expert: expert directories, or names in the pool
  std::filesystem::path pool_dir;                 // --pool (empty: none)
  std::filesystem::path trust_file;               // --trust (empty: the trust file the pool was pulled with)
  std::vector<std::string> routers;               // phatgoose, arrow, average-activation, retrieval, merged, smear
  int top_k = 2;
  bool single_experts = false;                    // every pool expert alone (+ Oracle, Best individual)
  std::filesystem::path multitask_dir;            // --multitask (empty: none)
  bool with_base = false;                         // add the base model's row even with other methods
  std::string device = "cpu";
  std::string gaggle_version;                     // recorded in meta
  EvalOptions eval;                               // limit, batch size, seed, progress
};

// Throws Error{usage} for an inconsistent request (routers without a pool, an unknown
// router, an expert name with no pool holding it), and what loading and scoring throw.
Report run_eval(const RunOptions& options);

}  // namespace gaggle::eval
