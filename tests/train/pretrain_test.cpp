// Span corruption and pretraining a tiny base from scratch (lib/train/pretrain.h).
#include "train_fixture.h"  // torch first (glog's CHECK), then Catch

#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <set>

#include "io/error.h"
#include "model/t5.h"
#include "support/test_support.h"
#include "train/pretrain.h"

using namespace gaggle;

namespace {

constexpr int64_t kEos = 1;
int64_t sentinel(int i) { return 1000 - 1 - i; }
bool is_sentinel(int64_t id) { return id > 900; }

// Puts the hidden spans back into the input: must give the original line.
std::vector<int64_t> reconstruct(const train::CorruptedExample& c) {
  std::map<int64_t, std::vector<int64_t>> spans;
  int64_t current = -1;
  for (auto id : c.target) {
    if (id == kEos) break;
    if (is_sentinel(id)) {
      current = id;
      spans[id];
    } else {
      spans[current].push_back(id);
    }
  }
  std::vector<int64_t> out;
  for (auto id : c.input) {
    if (id == kEos) break;
    if (is_sentinel(id)) out.insert(out.end(), spans[id].begin(), spans[id].end());
    else out.push_back(id);
  }
  return out;
}

std::vector<int64_t> line_of(int n) {
  std::vector<int64_t> v;
  for (int i = 0; i < n; ++i) v.push_back(10 + i);
  return v;
}

}  // namespace

TEST_CASE("span corruption hides 15% of tokens in spans and loses nothing", "[train][pretrain]") {
  train::SpanCorruptionOptions opt;
  for (int n : {2, 3, 7, 20, 41, 100}) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
      auto tokens = line_of(n);
      auto c = train::span_corrupt(tokens, seed, opt, sentinel, 100, kEos);
      REQUIRE(c.input.back() == kEos);
      REQUIRE(c.target.back() == kEos);
      CHECK(reconstruct(c) == tokens);
      int64_t sentinels_in = 0, hidden = 0;
      for (auto id : c.input) sentinels_in += is_sentinel(id);
      for (auto id : c.target) hidden += !is_sentinel(id) && id != kEos;
      const int64_t want = std::clamp<int64_t>(std::llround(n * 0.15), 1, n - 1);
      CHECK(hidden == want);
      // The target opens every span with its sentinel and ends with one more.
      CHECK(static_cast<int64_t>(c.target.size()) == hidden + sentinels_in + 2);
      CHECK(c.target.front() == sentinel(0));
      // Spans are counted from <extra_id_0> upwards, in order.
      int expect = 0;
      for (auto id : c.input)
        if (is_sentinel(id)) CHECK(id == sentinel(expect++));
      // Mean span length ~3: about noise / 3 spans.
      CHECK(sentinels_in == std::clamp<int64_t>(std::llround(want / 3.0), 1, std::min<int64_t>(want, n - want)));
    }
  }
}

TEST_CASE("span corruption is deterministic in the seed and varies across seeds", "[train][pretrain]") {
  train::SpanCorruptionOptions opt;
  auto tokens = line_of(60);
  auto a = train::span_corrupt(tokens, 5, opt, sentinel, 100, kEos);
  auto b = train::span_corrupt(tokens, 5, opt, sentinel, 100, kEos);
  CHECK(a.input == b.input);
  CHECK(a.target == b.target);
  std::set<std::vector<int64_t>> masks;
  for (uint64_t s = 0; s < 10; ++s) masks.insert(train::span_corrupt(tokens, s, opt, sentinel, 100, kEos).input);
  CHECK(masks.size() >= 8);
}

TEST_CASE("reconstruction keeps the corrupted input and asks for the whole line", "[train][pretrain]") {
  train::SpanCorruptionOptions opt;
  auto tokens = line_of(30);
  auto span = train::span_corrupt(tokens, 9, opt, sentinel, 100, kEos);
  auto full = train::reconstruct_example(tokens, 9, opt, sentinel, 100, kEos);
  CHECK(full.input == span.input);
  auto want = tokens;
  want.push_back(kEos);
  CHECK(full.target == want);
}

TEST_CASE("a one-token line keeps its input and predicts only the closing sentinel", "[train][pretrain]") {
  auto c = train::span_corrupt({42}, 0, {}, sentinel, 100, kEos);
  CHECK(c.input == std::vector<int64_t>{42, kEos});
  CHECK(c.target == std::vector<int64_t>{sentinel(0), kEos});
}

TEST_CASE("pretrain learns the corpus and writes a loadable Hugging Face base", "[train][pretrain]") {
  test::use_built_spm_shim();
  test::TempDir dir;
  std::string corpus;
  const std::vector<std::string> words = {"red", "green", "blue", "apple", "stone", "river", "seven", "three"};
  for (int i = 0; i < 64; ++i)
    corpus += "reverse the list: " + words[i % 8] + " " + words[(i * 3) % 8] + " " + words[(i * 5 + 1) % 8] + "\n";
  test::write_text(dir / "corpus.txt", corpus);

  train::PretrainOptions o;
  o.corpus = dir / "corpus.txt";
  o.tokenizer = test::data_dir() / "t5-tokenizer/spiece.model";
  o.out_dir = dir / "base";
  o.config.d_model = 32;
  o.config.d_kv = 8;
  o.config.d_ff = 64;
  o.config.num_layers = 1;
  o.config.num_decoder_layers = 1;
  o.config.num_heads = 4;
  o.config.relative_attention_num_buckets = 8;
  o.config.relative_attention_max_distance = 16;
  o.valid_fraction = 0.1;
  o.loop.steps = 60;
  o.loop.lr = 1e-2;
  o.loop.batch_size = 16;
  o.loop.eval_every = 20;
  o.loop.save_every = 0;
  o.loop.log_every = 10;
  auto r = train::pretrain(o);

  CHECK(r.train_lines + r.valid_lines == 64);
  CHECK(r.valid_lines == 6);
  CHECK(r.vocab_size == 32100);
  REQUIRE(r.loop.best_valid_loss);
  REQUIRE(!r.loop.log.empty());
  const double first = r.loop.log.front()["loss"].get<double>();
  CHECK(first > 6.0);  // the first 10 steps (warm-up) from ln(32100) = 10.4
  CHECK(*r.loop.best_valid_loss < first - 3.0);
  for (const char* f : {"config.json", "model.safetensors", "spiece.model", "pretrain-log.jsonl", "pretrain.json"})
    CHECK(std::filesystem::exists(dir / "base" / f));
  CHECK(!std::filesystem::exists(dir / ".base.pretrain"));
  CHECK(r.bytes_on_disk > 0);

  auto loaded = model::load_t5(dir / "base");
  CHECK(loaded->config().vocab_size == 32100);
  CHECK(loaded->config().d_model == 32);

  // An existing output directory is refused before any work.
  try {
    train::pretrain(o);
    FAIL("expected an Error");
  } catch (const gaggle::Error& e) {
    CHECK(e.code() == gaggle::ErrorCode::exists);
  }
}

TEST_CASE("pretrain refuses an empty corpus and a missing tokenizer", "[train][pretrain]") {
  test::use_built_spm_shim();
  test::TempDir dir;
  test::write_text(dir / "empty.txt", "\n  \n");
  train::PretrainOptions o;
  o.corpus = dir / "empty.txt";
  o.out_dir = dir / "base";
  CHECK_THROWS_AS(train::pretrain(o), gaggle::Error);  // no tokenizer
  o.tokenizer = test::data_dir() / "t5-tokenizer/spiece.model";
  try {
    train::pretrain(o);
    FAIL("expected an Error");
  } catch (const gaggle::Error& e) {
    CHECK(e.code() == gaggle::ErrorCode::invalid);
    CHECK(std::string(e.what()).find("empty.txt") != std::string::npos);
  }
}
