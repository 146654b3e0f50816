// Routed decoder-only models (issue #14): every router's adapter on a tiny Llama gives the
// same greedy continuation with the KV cache as without it, and retrieval routes each
// sequence by its prompt's embedding.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "model/llama.h"
#include "route/merged.h"
#include "route/phatgoose.h"
#include "route/retrieval.h"
#include "route/retrieval_linear.h"
#include "route/routed_linear.h"
#include "route/smear.h"

using namespace gaggle;

namespace {

model::LlamaModel tiny_llama() {
  model::LlamaConfig c;
  c.vocab_size = 40, c.hidden_size = 32, c.intermediate_size = 48, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.head_dim = 8;
  c.bos_token_id = 1, c.eos_token_id = 2;
  at::manual_seed(5);
  return model::make_llama(c, 0.3);
}

std::vector<std::int64_t> ids_of(const at::Tensor& t) {
  return std::vector<std::int64_t>(t.data_ptr<std::int64_t>(), t.data_ptr<std::int64_t>() + t.numel());
}

}  // namespace

TEST_CASE("routed Llama: greedy with the KV cache equals greedy without it, for every router", "[route][llama]") {
  auto m = tiny_llama();
  const std::int64_t n = 3, r = 4;
  auto retrieval_index = [&] {
    std::vector<at::Tensor> per_expert;
    for (std::int64_t e = 0; e < n; ++e) per_expert.push_back(at::randn({2, 32}));
    return route::make_retrieval_index(per_expert, {"a", "b", "c"});
  };
  for (const char* router : {"phatgoose", "arrow", "merged", "smear", "retrieval"}) {
    DYNAMIC_SECTION(router) {
      at::manual_seed(11);
      m->clear_adapters();
      std::shared_ptr<route::RetrievalChoice> choice;
      if (std::string(router) == "retrieval") choice = std::make_shared<route::RetrievalChoice>(retrieval_index());
      for (const auto& name : m->linear_names()) {
        auto w = m->linear_weight(name);
        at::Tensor A = at::randn({n, r, w.size(1)}) * 0.5, B = at::randn({n, w.size(0), r}) * 0.5;
        at::Tensor keys = route::phatgoose_keys(at::randn({n, w.size(1)}));
        std::shared_ptr<model::LinearAdapter> a;
        const std::string k = router;
        if (k == "phatgoose" || k == "arrow") {
          route::RoutedLinearOptions o;
          o.top_k = 2;
          if (k == "arrow") o.score = route::ScoreKind::abs_dot;
          a = std::make_shared<route::RoutedLinear>(A, B, keys, o);
        } else if (k == "merged") {
          a = std::make_shared<route::MergedLinear>(A, B);
        } else if (k == "smear") {
          a = std::make_shared<route::SmearLinear>(A, B, keys);
        } else {
          a = std::make_shared<route::RetrievalLinear>(A, B, choice);
        }
        m->set_adapter(name, a);
      }
      for (const auto& prompt : std::vector<std::vector<std::int64_t>>{{1, 7, 33, 9, 21}, {1, 4}}) {
        at::Tensor p = at::tensor(prompt, at::kLong);
        auto cached = ids_of(m->greedy(p, 8, false));
        auto uncached = ids_of(m->greedy_uncached(p, 8, false));
        CHECK(cached.size() == 8);
        CHECK(cached == uncached);
      }
      // generate() decodes a batch at once (left-padded): the same as one prompt at a time.
      const model::TokenRows batch = {{1, 7, 33, 9, 21}, {1, 4}, {1, 12, 5}};
      const model::TokenRows together = m->generate(batch, 8);
      REQUIRE(together.size() == batch.size());
      for (std::size_t b = 0; b < batch.size(); ++b)
        CHECK(together[b] == ids_of(m->greedy(at::tensor(batch[b], at::kLong), 8, true)));
      if (choice) {
        // The expert chosen is the one the prompt's base embedding retrieves.
        c10::InferenceMode guard;
        const std::vector<std::int64_t> prompt = {1, 7, 33, 9, 21};
        m->generate({prompt}, 2);
        auto saved = std::vector<std::shared_ptr<model::LinearAdapter>>();
        for (const auto& name : m->linear_names()) saved.push_back(m->adapter(name));
        m->clear_adapters();
        at::Tensor query = m->prompt_embeddings({prompt});
        std::size_t i = 0;
        for (const auto& name : m->linear_names()) m->set_adapter(name, saved[i++]);
        CHECK(choice->rows() == ids_of(route::retrieve_experts(choice->index(), query).to(at::kLong).contiguous()));
      }
    }
  }
  m->clear_adapters();
}
