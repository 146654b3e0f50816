#include "train/pretrain.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "io/atomic_file.h"
#include "io/error.h"
#include "io/json_file.h"
#include "io/sha256.h"
#include "model/t5.h"
#include "text/tokenizer.h"
#include "train/detail/model_ops.h"
#include "train/detail/room.h"
#include "train/expert.h"

namespace gaggle::train {
namespace fs = std::filesystem;
namespace {

// splitmix64: a portable, well-mixed stream (std:: distributions are not portable).
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
};

uint64_t mix(uint64_t a, uint64_t b, uint64_t c) {
  Rng r{a * 0x100000001B3ULL ^ (b + 0x51ED27ULL) ^ (c << 32 | c >> 32)};
  r.next();
  return r.next();
}

// Splits n items into k non-empty parts (a uniformly random composition).
std::vector<int64_t> random_composition(int64_t n, int64_t k, Rng& rng) {
  // k-1 distinct cut points in [1, n-1] by a partial Fisher-Yates shuffle.
  std::vector<int64_t> points(static_cast<size_t>(n - 1));
  for (int64_t i = 0; i < n - 1; ++i) points[static_cast<size_t>(i)] = i + 1;
  for (int64_t i = 0; i < k - 1; ++i) {
    int64_t j = i + rng.below(n - 1 - i);
    std::swap(points[static_cast<size_t>(i)], points[static_cast<size_t>(j)]);
  }
  std::vector<int64_t> cuts(points.begin(), points.begin() + (k - 1));
  std::sort(cuts.begin(), cuts.end());
  std::vector<int64_t> parts;
  int64_t prev = 0;
  for (int64_t c : cuts) {
    parts.push_back(c - prev);
    prev = c;
  }
  parts.push_back(n - prev);
  return parts;
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::istringstream in(io::read_file(path));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    lines.push_back(line);
  }
  return lines;
}

uint64_t file_size_or_zero(const fs::path& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

}  // namespace

CorruptedExample span_corrupt(const std::vector<int64_t>& tokens, uint64_t seed, const SpanCorruptionOptions& options,
                              const std::function<int64_t(int)>& sentinel, int max_sentinels, int64_t eos_id) {
  CorruptedExample out;
  const auto n = static_cast<int64_t>(tokens.size());
  if (n < 2 || max_sentinels < 2) {
    out.input = tokens;
    out.input.push_back(eos_id);
    out.target = {sentinel(0), eos_id};
    return out;
  }
  Rng rng{seed};
  int64_t noise = std::llround(static_cast<double>(n) * options.noise_density);
  noise = std::clamp<int64_t>(noise, 1, n - 1);
  int64_t spans = std::llround(static_cast<double>(noise) / std::max(options.mean_span_length, 1.0));
  spans = std::clamp<int64_t>(spans, 1, std::min<int64_t>({noise, n - noise, max_sentinels - 1}));
  auto noise_parts = random_composition(noise, spans, rng);
  auto keep_parts = random_composition(n - noise, spans, rng);
  int64_t pos = 0;
  for (int64_t s = 0; s < spans; ++s) {
    for (int64_t i = 0; i < keep_parts[static_cast<size_t>(s)]; ++i) out.input.push_back(tokens[static_cast<size_t>(pos++)]);
    const int64_t id = sentinel(static_cast<int>(s));
    out.input.push_back(id);
    out.target.push_back(id);
    for (int64_t i = 0; i < noise_parts[static_cast<size_t>(s)]; ++i) out.target.push_back(tokens[static_cast<size_t>(pos++)]);
  }
  out.input.push_back(eos_id);
  out.target.push_back(sentinel(static_cast<int>(spans)));
  out.target.push_back(eos_id);
  return out;
}

CorruptedExample reconstruct_example(const std::vector<int64_t>& tokens, uint64_t seed,
                                     const SpanCorruptionOptions& options, const std::function<int64_t(int)>& sentinel,
                                     int max_sentinels, int64_t eos_id) {
  CorruptedExample out = span_corrupt(tokens, seed, options, sentinel, max_sentinels, eos_id);
  out.target = tokens;
  out.target.push_back(eos_id);
  return out;
}

PretrainResult pretrain(const PretrainOptions& options) {
  if (options.out_dir.empty()) throw_error(ErrorCode::usage, kRoom, "no --out directory");
  if (fs::exists(options.out_dir) && !options.force)
    throw_error(ErrorCode::exists, kRoom, "'" + options.out_dir.string() + "' already exists",
                "choose a new --out directory, or pass --force to replace it");
  if (options.corpus.empty()) throw_error(ErrorCode::usage, kRoom, "no --corpus file");
  if (options.tokenizer.empty() && options.tokenizer_text.empty())
    throw_error(ErrorCode::usage, kRoom, "no tokenizer: give --tokenizer spiece.model or --tokenizer-text FILE",
                "--tokenizer-text trains a SentencePiece model on the given text (e.g. corpus/tokenizer.txt)");
  if (!(options.corruption.noise_density > 0 && options.corruption.noise_density < 1))
    throw_error(ErrorCode::usage, kRoom, "--noise-density must lie in (0, 1)");
  if (!(options.corruption.mean_span_length >= 1)) throw_error(ErrorCode::usage, kRoom, "--mean-span must be >= 1");
  if (!(options.corruption.reconstruct_fraction >= 0 && options.corruption.reconstruct_fraction <= 1))
    throw_error(ErrorCode::usage, kRoom, "--reconstruct must lie in [0, 1]");
  if (options.max_input_len < 4) throw_error(ErrorCode::usage, kRoom, "--max-input-len must be at least 4");
  if (options.save_dtype != io::DType::F32 && options.save_dtype != io::DType::BF16 && options.save_dtype != io::DType::F16)
    throw_error(ErrorCode::usage, kRoom, "--save-dtype must be f32, bf16 or f16");
  if (options.valid_fraction < 0 || options.valid_fraction >= 1)
    throw_error(ErrorCode::usage, kRoom, "--valid-fraction must lie in [0, 1)");
  auto note = [&](const std::string& s) {
    if (options.note) options.note(s);
  };

  const fs::path work = work_dir_for(options.out_dir, "pretrain");
  if (!options.loop.resume && fs::exists(work)) fs::remove_all(work);
  fs::create_directories(work);

  // The tokenizer: given, or trained on the tokenizer text (kept in the work directory so
  // a resumed run uses the same one).
  fs::path spiece = options.tokenizer;
  if (!spiece.empty() && fs::is_directory(spiece)) spiece /= "spiece.model";
  if (spiece.empty()) {
    spiece = work / "spiece.model";
    if (!(options.loop.resume && fs::exists(spiece))) {
      note("training a SentencePiece unigram tokenizer (" + std::to_string(options.vocab_size) + " pieces) on " +
           std::to_string(options.tokenizer_text.size()) + " file(s)");
      text::TrainOptions t;
      t.inputs = options.tokenizer_text;
      t.output = spiece;
      t.vocab_size = options.vocab_size;
      t.model_type = "unigram";
      t.num_threads = 1;
      text::train_sentencepiece(t);
    }
  }
  auto tokenizer = text::Tokenizer::load_model_file(spiece, 100);
  const int64_t eos = tokenizer.eos_id();
  const int max_sentinels = tokenizer.extra_ids();
  auto sentinel = [&](int i) { return tokenizer.sentinel_id(i); };

  // The corpus: tokenized once, cut to max_input_len, split into train / validation.
  auto lines = read_lines(options.corpus);
  if (lines.empty())
    throw_error(ErrorCode::invalid, kRoom, "'" + options.corpus.string() + "' has no text lines",
                "the corpus is plain text, one example per line (e.g. corpus/pretrain.txt of gaggle debug make-tasks)");
  std::vector<std::vector<int64_t>> tokens;
  tokens.reserve(lines.size());
  for (const auto& l : lines) {
    auto ids = tokenizer.encode(l, /*add_eos=*/false);
    if (static_cast<int64_t>(ids.size()) > options.max_input_len) ids.resize(static_cast<size_t>(options.max_input_len));
    tokens.push_back(std::move(ids));
  }
  const int64_t n = static_cast<int64_t>(tokens.size());
  int64_t n_valid = n >= 2 ? std::llround(options.valid_fraction * static_cast<double>(n)) : 0;
  n_valid = std::min<int64_t>(n_valid, options.max_valid_lines);
  if (options.valid_fraction > 0 && n >= 2) n_valid = std::max<int64_t>(n_valid, 1);
  auto order = sample_indices(n, n, options.loop.seed ^ 0x70726574ULL);
  std::vector<std::vector<int64_t>> train_lines, valid_lines;
  for (int64_t i = 0; i < n; ++i)
    (i < n_valid ? valid_lines : train_lines).push_back(std::move(tokens[static_cast<size_t>(order[static_cast<size_t>(i)])]));
  note("corpus: " + std::to_string(train_lines.size()) + " training lines, " + std::to_string(valid_lines.size()) +
       " validation lines, vocabulary " + std::to_string(tokenizer.vocab_size()));

  // Which objective a draw gets: reconstruction for a `reconstruct_fraction` share.
  auto make_example = [&](const std::vector<int64_t>& line, uint64_t seed) {
    const double u = static_cast<double>(mix(seed, 0x7265636FULL, 1) % 1000000) / 1e6;
    if (u < options.corruption.reconstruct_fraction)
      return reconstruct_example(line, seed, options.corruption, sentinel, max_sentinels, eos);
    return span_corrupt(line, seed, options.corruption, sentinel, max_sentinels, eos);
  };
  TokenizedData valid;
  for (size_t i = 0; i < valid_lines.size(); ++i) {
    auto c = make_example(valid_lines[i], mix(options.loop.seed, i, 0xFFFFFFFFULL));
    valid.examples.push_back({std::move(c.input), std::move(c.target), {}, -1});
  }

  // The model.
  model::T5Config config = options.config;
  config.vocab_size = tokenizer.vocab_size();
  config.pad_token_id = tokenizer.pad_id();
  config.eos_token_id = eos;
  config.decoder_start_token_id = tokenizer.pad_id();
  config.tie_word_embeddings = true;
  torch::manual_seed(options.loop.seed);
  auto t5 = model::make_t5(config);
  if (options.device != "cpu") t5->to(torch::Device(options.device));

  PretrainResult result;
  result.out_dir = options.out_dir;
  result.train_lines = static_cast<int64_t>(train_lines.size());
  result.valid_lines = static_cast<int64_t>(valid_lines.size());
  result.parameters = t5->num_parameters();
  result.vocab_size = config.vocab_size;
  const std::string corpus_sha = io::sha256_file_hex(options.corpus);
  const std::string spiece_sha = io::sha256_file_hex(spiece);

  LoopOptions loop = options.loop;
  loop.work_dir = work;
  loop.settings = {{"objective", options.corruption.reconstruct_fraction > 0 ? "span_corruption+reconstruction" : "span_corruption"},
                   {"corpus_sha256", corpus_sha},
                   {"spiece_sha256", spiece_sha},
                   {"config", config.to_json()},
                   {"noise_density", options.corruption.noise_density},
                   {"mean_span_length", options.corruption.mean_span_length},
                   {"reconstruct_fraction", options.corruption.reconstruct_fraction},
                   {"max_input_len", options.max_input_len},
                   {"valid_lines", result.valid_lines},
                   {"steps", loop.steps},
                   {"lr", loop.lr},
                   {"weight_decay", loop.weight_decay},
                   {"warmup_fraction", loop.warmup_fraction},
                   {"clip_norm", loop.clip_norm},
                   {"batch_size", loop.batch_size},
                   {"accumulate", loop.accumulate},
                   {"seed", loop.seed}};

  // Each draw of a line gets a fresh mask: seeded by (seed, line, how often it was drawn).
  // target_tokens() is asked for every micro-batch of a step before loss() runs them, so
  // it corrupts and caches; loss() consumes the cache and advances the draw count.
  std::vector<uint32_t> draws(train_lines.size(), 0);
  auto corrupt_batch = [&](const std::vector<int64_t>& idx) {
    TokenizedData d;
    for (auto i : idx) {
      auto c = make_example(train_lines[static_cast<size_t>(i)],
                            mix(loop.seed, static_cast<uint64_t>(i), draws[static_cast<size_t>(i)]));
      d.examples.push_back({std::move(c.input), std::move(c.target), {}, -1});
    }
    return d;
  };
  std::vector<int64_t> all_idx;
  LoopHooks hooks;
  hooks.num_examples = result.train_lines;
  for (auto& p : t5->named_parameters()) {
    hooks.parameters.push_back(p.value());
    hooks.named[p.key()] = p.value();
  }
  hooks.target_tokens = [&](const std::vector<int64_t>& idx) {
    auto d = corrupt_batch(idx);
    std::vector<int64_t> seq(idx.size());
    for (size_t i = 0; i < seq.size(); ++i) seq[i] = static_cast<int64_t>(i);
    return detail::target_tokens(d, seq);
  };
  hooks.loss = [&](const std::vector<int64_t>& idx) {
    auto d = corrupt_batch(idx);
    for (auto i : idx) ++draws[static_cast<size_t>(i)];
    std::vector<int64_t> seq(idx.size());
    for (size_t i = 0; i < seq.size(); ++i) seq[i] = static_cast<int64_t>(i);
    return detail::batch_nll(*t5, d, seq);
  };
  if (!valid.examples.empty())
    hooks.validate = [&] {
      t5->eval();
      auto r = detail::validate(*t5, valid, std::max<int64_t>(loop.batch_size, 32));
      t5->train();
      return r;
    };
  t5->train();
  result.loop = run_training(loop, hooks);

  // The kept weights back into the model, then the checkpoint directory.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : t5->named_parameters()) {
      auto it = result.loop.best.find(p.key());
      if (it == result.loop.best.end())
        throw_error(ErrorCode::invalid, kRoom, "the kept weights lack '" + p.key() + "'");
      p.value().copy_(it->second.to(p.value().device()));
    }
  }
  t5->to(torch::kCPU);
  io::AtomicDirectory dir(options.out_dir);
  model::save_t5(t5, dir.path(), options.save_dtype);
  io::write_file_atomic(dir.path() / "spiece.model", io::read_file(spiece));
  std::string log;
  for (const auto& j : result.loop.log) log += j.dump() + "\n";
  io::write_file_atomic(dir.path() / "pretrain-log.jsonl", log);
  nlohmann::json info = loop.settings;
  info["generator"] = "gaggle debug pretrain";
  info["corpus"] = options.corpus.filename().string();
  info["train_lines"] = result.train_lines;
  info["parameters"] = result.parameters;
  info["save_dtype"] = std::string(io::dtype_name(options.save_dtype));
  info["best_step"] = result.loop.best_step;
  if (result.loop.best_valid_loss) info["valid_loss"] = *result.loop.best_valid_loss;
  io::write_json_file_atomic(dir.path() / "pretrain.json", info);
  dir.commit(/*replace=*/options.force);
  std::error_code ec;
  fs::remove_all(work, ec);
  for (const char* f : {"config.json", "model.safetensors", "spiece.model"})
    result.bytes_on_disk += file_size_or_zero(options.out_dir / f);
  return result;
}

}  // namespace gaggle::train
