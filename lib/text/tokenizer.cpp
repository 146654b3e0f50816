// The T5 tokenizer over the SentencePiece shim (see tokenizer.h for the contract).
#include "text/tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include "io/atomic_file.h"
#include "io/error.h"

namespace gaggle::text {
namespace fs = std::filesystem;

namespace {

constexpr const char* kRoom = "text";
constexpr const char* kShimName = "libgaggle_spm.so";
constexpr int kShimAbi = 1;

}  // namespace

// ---- the shim ---------------------------------------------------------------------

// Not file-local: Tokenizer::Impl, which has external linkage, points at it.
namespace detail {

struct SpmShim {
  fs::path path;
  int (*abi_version)() = nullptr;
  void* (*load)(const char*, char*, std::size_t) = nullptr;
  void (*free_model)(void*) = nullptr;
  long (*encode)(void*, const char*, std::size_t, std::int32_t*, std::size_t, char*, std::size_t) = nullptr;
  long (*decode)(void*, const std::int32_t*, std::size_t, char*, std::size_t, char*, std::size_t) = nullptr;
  int (*piece_size)(void*) = nullptr;
  int (*piece_to_id)(void*, const char*, std::size_t) = nullptr;
  const char* (*id_to_piece)(void*, int) = nullptr;
  int (*special_id)(void*, int) = nullptr;
  int (*piece_kind)(void*, int) = nullptr;
  int (*train)(const char* const*, std::size_t, std::size_t, const char* const*, const char* const*, std::size_t,
               char**, std::size_t*, char*, std::size_t) = nullptr;
  void (*free_buffer)(char*) = nullptr;
};

}  // namespace detail

namespace {

std::vector<fs::path> shim_candidates() {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back(exe.parent_path() / kShimName);
    out.push_back(exe.parent_path().parent_path() / "lib" / "gaggle" / kShimName);
  }
  if (const char* env = std::getenv("GAGGLE_SPM_SHIM"); env && *env) out.emplace_back(env);
  return out;
}

template <typename F>
void bind(void* lib, const char* name, F& fn, const fs::path& path) {
  void* sym = dlsym(lib, name);
  if (!sym)
    throw_error(ErrorCode::invalid, kRoom, "'" + path.string() + "' has no symbol '" + name + "'",
                "rebuild gaggle so that libgaggle_spm.so matches the binary");
  fn = reinterpret_cast<F>(sym);
}

const detail::SpmShim& shim() {
  static std::once_flag once;
  static detail::SpmShim s;
  static std::string failure;
  static std::string failure_hint;
  std::call_once(once, [] {
    std::string looked;
    for (const fs::path& candidate : shim_candidates()) {
      looked += "\n  " + candidate.string();
      std::error_code ec;
      if (!fs::is_regular_file(candidate, ec)) continue;
      // RTLD_DEEPBIND: the shim's protobuf (inside libsentencepiece) must not resolve to
      // LibTorch's, which is already in the process (build-notes.md).
      void* lib = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (!lib) {
        const char* e = dlerror();
        failure = "cannot load the SentencePiece shim '" + candidate.string() + "': " + (e ? e : "unknown error");
        failure_hint = "is libsentencepiece0 installed? (apt-get install libsentencepiece0)";
        return;
      }
      try {
        bind(lib, "gaggle_spm_abi_version", s.abi_version, candidate);
        if (s.abi_version() != kShimAbi)
          throw_error(ErrorCode::mismatch, kRoom,
                      "'" + candidate.string() + "' speaks ABI " + std::to_string(s.abi_version()) +
                          ", this gaggle needs " + std::to_string(kShimAbi),
                      "rebuild or reinstall gaggle so that the binary and its shim match");
        bind(lib, "gaggle_spm_load", s.load, candidate);
        bind(lib, "gaggle_spm_free", s.free_model, candidate);
        bind(lib, "gaggle_spm_encode", s.encode, candidate);
        bind(lib, "gaggle_spm_decode", s.decode, candidate);
        bind(lib, "gaggle_spm_piece_size", s.piece_size, candidate);
        bind(lib, "gaggle_spm_piece_to_id", s.piece_to_id, candidate);
        bind(lib, "gaggle_spm_id_to_piece", s.id_to_piece, candidate);
        bind(lib, "gaggle_spm_special_id", s.special_id, candidate);
        bind(lib, "gaggle_spm_piece_kind", s.piece_kind, candidate);
        bind(lib, "gaggle_spm_train", s.train, candidate);
        bind(lib, "gaggle_spm_free_buffer", s.free_buffer, candidate);
      } catch (const Error& e) {
        failure = e.what();
        failure_hint = e.hint();
        return;
      }
      s.path = candidate;
      return;  // the handle stays open for the life of the process
    }
    failure = std::string("cannot find the SentencePiece shim ") + kShimName + "; looked in:" + looked;
    failure_hint = "build the gaggle_spm target (it sits beside the gaggle binary) or set GAGGLE_SPM_SHIM=/path/to/" +
                   std::string(kShimName);
  });
  if (!s.path.empty()) return s;
  throw_error(ErrorCode::not_found, kRoom, failure, failure_hint);
}

// ---- Python's str.strip() whitespace, on UTF-8 -------------------------------------

bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Decodes the UTF-8 code point starting at s[i]; returns its length (1 for invalid bytes).
std::size_t utf8_at(std::string_view s, std::size_t i, char32_t& cp) {
  auto b = static_cast<unsigned char>(s[i]);
  std::size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) {
    cp = 0xFFFD;
    return 1;
  }
  cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
  for (std::size_t k = 1; k < n; ++k) {
    auto c = static_cast<unsigned char>(s[i + k]);
    if ((c >> 6) != 0x2) {
      cp = 0xFFFD;
      return 1;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  return n;
}

std::string_view lstrip(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    char32_t cp;
    std::size_t n = utf8_at(s, i, cp);
    if (!is_python_space(cp)) break;
    i += n;
  }
  return s.substr(i);
}

std::string_view rstrip(std::string_view s) {
  std::size_t end = s.size();
  while (end > 0) {
    std::size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 && end - start < 4) --start;
    char32_t cp;
    std::size_t n = utf8_at(s, start, cp);
    if (start + n != end || !is_python_space(cp)) break;
    end = start;
  }
  return s.substr(0, end);
}

// Hugging Face's clean_up_tokenization (on by default for T5Tokenizer.decode).
std::string clean_up_tokenization(std::string s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},   {" ?", "?"},     {" !", "!"},   {" ,", ","},   {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    std::string_view f(from);
    std::string out;
    out.reserve(s.size());
    std::size_t pos = 0;
    for (std::size_t hit; (hit = s.find(f, pos)) != std::string::npos; pos = hit + f.size()) {
      out.append(s, pos, hit - pos);
      out += to;
    }
    out.append(s, pos, std::string::npos);
    s = std::move(out);
  }
  return s;
}

}  // namespace

// ---- the model ----------------------------------------------------------------------

struct Tokenizer::Impl {
  const detail::SpmShim* shim = nullptr;
  void* handle = nullptr;
  fs::path path;
  int pieces = 0;  // SentencePiece vocabulary
  int extra = 0;   // sentinels after it
  std::int64_t pad = 0, eos = 1, unk = 2;
  std::vector<std::string> special_pieces;  // pieces split out of text besides sentinels

  ~Impl() {
    if (handle) shim->free_model(handle);
  }

  // The id of a special token starting at text[i] and its length, or -1.
  std::int64_t match_special(std::string_view text, std::size_t i, std::size_t& len) const {
    static constexpr std::string_view kSentinel = "<extra_id_";
    std::string_view rest = text.substr(i);
    if (rest.starts_with(kSentinel)) {
      std::size_t j = kSentinel.size();
      std::size_t digits = 0;
      long n = 0;
      while (j < rest.size() && rest[j] >= '0' && rest[j] <= '9' && digits < 4) {
        n = n * 10 + (rest[j] - '0');
        ++j;
        ++digits;
      }
      bool canonical = digits > 0 && (digits == 1 || rest[kSentinel.size()] != '0');
      if (canonical && j < rest.size() && rest[j] == '>' && n < extra) {
        len = j + 1;
        return pieces + extra - 1 - n;
      }
    }
    for (const std::string& p : special_pieces) {
      if (rest.starts_with(p)) {
        len = p.size();
        return shim->piece_to_id(handle, p.data(), p.size());
      }
    }
    return -1;
  }

  void encode_plain(std::string_view text, std::vector<std::int64_t>& out) const {
    std::vector<std::int32_t> buf(text.size() + 16);
    char err[512] = {0};
    long n = shim->encode(handle, text.data(), text.size(), buf.data(), buf.size(), err, sizeof err);
    if (n > static_cast<long>(buf.size())) {
      buf.resize(static_cast<std::size_t>(n));
      n = shim->encode(handle, text.data(), text.size(), buf.data(), buf.size(), err, sizeof err);
    }
    if (n < 0)
      throw_error(ErrorCode::invalid, kRoom, "'" + path.string() + "': SentencePiece cannot encode the text: " + err);
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  }

  std::string decode_plain(const std::vector<std::int32_t>& ids) const {
    if (ids.empty()) return {};
    std::string out(ids.size() * 8 + 16, '\0');
    char err[512] = {0};
    long n = shim->decode(handle, ids.data(), ids.size(), out.data(), out.size(), err, sizeof err);
    if (n > static_cast<long>(out.size())) {
      out.resize(static_cast<std::size_t>(n));
      n = shim->decode(handle, ids.data(), ids.size(), out.data(), out.size(), err, sizeof err);
    }
    if (n < 0) throw_error(ErrorCode::invalid, kRoom, "'" + path.string() + "': SentencePiece cannot decode: " + err);
    out.resize(static_cast<std::size_t>(n));
    return out;
  }
};

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const fs::path& base_dir) {
  std::error_code ec;
  if (!fs::is_directory(base_dir, ec))
    throw_error(ErrorCode::not_found, kRoom, "base model directory '" + base_dir.string() + "' does not exist",
                "pass a Hugging Face checkpoint directory (config.json, model.safetensors, spiece.model)");
  fs::path spm = base_dir / "spiece.model";
  if (fs::is_regular_file(spm, ec)) return load_model_file(spm);
  // Llama checkpoints name their SentencePiece model tokenizer.model and have no sentinels.
  fs::path llama_spm = base_dir / "tokenizer.model";
  if (fs::is_regular_file(llama_spm, ec)) return load_model_file(llama_spm, 0);
  if (fs::exists(base_dir / "tokenizer.json", ec))
    throw_error(ErrorCode::unsupported, kRoom,
                "'" + base_dir.string() + "' has only tokenizer.json; gaggle reads the SentencePiece model spiece.model",
                "copy spiece.model from the original checkpoint (every T5 / Flan-T5 repository on the Hugging Face "
                "Hub has one) into '" + base_dir.string() + "'");
  throw_error(ErrorCode::not_found, kRoom, "'" + base_dir.string() + "' has no tokenizer (spiece.model, or tokenizer.model for Llama)",
              "copy the checkpoint's spiece.model into the directory");
}

Tokenizer Tokenizer::load_model_file(const fs::path& spiece_model, int extra_ids) {
  if (extra_ids < 0 || extra_ids > 10000)
    throw_error(ErrorCode::invalid, kRoom, "extra_ids must be in [0, 10000], got " + std::to_string(extra_ids));
  std::error_code ec;
  if (!fs::is_regular_file(spiece_model, ec))
    throw_error(ErrorCode::not_found, kRoom, "tokenizer model '" + spiece_model.string() + "' does not exist");
  const detail::SpmShim& s = shim();
  auto impl = std::make_shared<Impl>();
  impl->shim = &s;
  impl->path = spiece_model;
  char err[512] = {0};
  impl->handle = s.load(spiece_model.c_str(), err, sizeof err);
  if (!impl->handle)
    throw_error(ErrorCode::invalid, kRoom,
                "'" + spiece_model.string() + "' is not a SentencePiece model: " + std::string(err),
                "spiece.model must be the binary model file written by SentencePiece");
  impl->pieces = s.piece_size(impl->handle);
  impl->extra = extra_ids;
  impl->unk = s.special_id(impl->handle, 0);
  impl->eos = s.special_id(impl->handle, 2);
  impl->pad = s.special_id(impl->handle, 3);
  // Llama's tokenizer.model (no sentinels) has no padding piece: batches are masked, and
  // pad_id() is -1 there. T5's needs one.
  if (impl->eos < 0 || (impl->pad < 0 && extra_ids > 0) || impl->unk < 0)
    throw_error(ErrorCode::unsupported, kRoom,
                "'" + spiece_model.string() + "' has no " +
                    (impl->eos < 0 ? "EOS" : impl->pad < 0 ? "padding" : "unknown") + " piece; T5 needs <pad>, </s> and <unk>",
                "train the model with pad_id=0 eos_id=1 unk_id=2 bos_id=-1 (gaggle debug train-spm does)");
  for (std::int64_t id : {impl->eos, impl->pad, impl->unk})
    if (id >= 0) impl->special_pieces.emplace_back(s.id_to_piece(impl->handle, static_cast<int>(id)));
  return Tokenizer(std::move(impl));
}

std::vector<std::int64_t> Tokenizer::encode(std::string_view text, bool add_eos) const {
  const Impl& m = *impl_;
  // 1. Split out special tokens, as HF's added-token trie does (no special token is a
  //    prefix of another, so the leftmost match is the match).
  struct Chunk {
    std::string_view text;
    std::int64_t special = -1;
  };
  std::vector<Chunk> chunks;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '<') continue;
    std::size_t len = 0;
    std::int64_t id = m.match_special(text, i, len);
    if (id < 0) continue;
    if (i > start) chunks.push_back({text.substr(start, i - start)});
    chunks.push_back({text.substr(i, len), id});
    start = i + len;
    i = start - 1;
  }
  if (start < text.size()) chunks.push_back({text.substr(start)});
  // 2. Special tokens strip the whitespace of their neighbours (HF's default for
  //    special tokens that are plain strings), in order, in place.
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    if (chunks[i].special < 0) continue;
    if (i + 1 < chunks.size() && chunks[i + 1].special < 0) chunks[i + 1].text = lstrip(chunks[i + 1].text);
    if (i > 0 && chunks[i - 1].special < 0) chunks[i - 1].text = rstrip(chunks[i - 1].text);
  }
  // 3. SentencePiece on the rest.
  std::vector<std::int64_t> ids;
  for (const Chunk& c : chunks) {
    if (c.special >= 0)
      ids.push_back(c.special);
    else if (!c.text.empty())
      m.encode_plain(c.text, ids);
  }
  if (add_eos) ids.push_back(m.eos);
  return ids;
}

std::string Tokenizer::decode(const std::vector<std::int64_t>& ids, bool skip_special) const {
  const Impl& m = *impl_;
  std::string out;
  std::vector<std::int32_t> run;
  bool prev_special = false;
  auto flush = [&] {
    out += m.decode_plain(run);
    run.clear();
  };
  for (std::int64_t id : ids) {
    if (id < 0 || id >= vocab_size())
      throw_error(ErrorCode::invalid, kRoom,
                  "token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab_size()) + ")");
    bool special = id == m.pad || id == m.eos || id == m.unk || id >= m.pieces;
    if (!special) {
      run.push_back(static_cast<std::int32_t>(id));
      prev_special = false;
      continue;
    }
    if (skip_special) continue;
    // As HF's convert_tokens_to_string: a special token is written by name, with a space
    // before a run of them.
    if (!prev_special) out += ' ';
    flush();
    out += id_to_piece(id);
    prev_special = true;
  }
  flush();
  std::string_view trimmed = rstrip(lstrip(out));
  return clean_up_tokenization(std::string(trimmed));
}

std::string Tokenizer::id_to_piece(std::int64_t id) const {
  const Impl& m = *impl_;
  if (id >= m.pieces && id < vocab_size()) return "<extra_id_" + std::to_string(m.pieces + m.extra - 1 - id) + ">";
  const char* p = (id >= 0 && id < m.pieces) ? m.shim->id_to_piece(m.handle, static_cast<int>(id)) : nullptr;
  if (!p)
    throw_error(ErrorCode::invalid, kRoom,
                "token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab_size()) + ")");
  return p;
}

std::int64_t Tokenizer::piece_to_id(std::string_view piece) const {
  const Impl& m = *impl_;
  std::size_t len = 0;
  std::int64_t id = piece.starts_with("<extra_id_") ? m.match_special(piece, 0, len) : -1;
  if (id >= 0 && len == piece.size()) return id;
  return m.shim->piece_to_id(m.handle, piece.data(), piece.size());
}

std::int64_t Tokenizer::vocab_size() const { return impl_->pieces + impl_->extra; }
std::int64_t Tokenizer::pad_id() const { return impl_->pad; }
std::int64_t Tokenizer::eos_id() const { return impl_->eos; }
std::int64_t Tokenizer::unk_id() const { return impl_->unk; }
int Tokenizer::extra_ids() const { return impl_->extra; }
const fs::path& Tokenizer::model_path() const { return impl_->path; }

std::int64_t Tokenizer::sentinel_id(int n) const {
  if (n < 0 || n >= impl_->extra)
    throw_error(ErrorCode::invalid, kRoom,
                "sentinel <extra_id_" + std::to_string(n) + "> does not exist (the tokenizer has " +
                    std::to_string(impl_->extra) + ")");
  return vocab_size() - 1 - n;
}

// ---- training ---------------------------------------------------------------------

void train_sentencepiece(const TrainOptions& o) {
  if (o.inputs.empty()) throw_error(ErrorCode::usage, kRoom, "training a tokenizer needs at least one input file");
  for (const fs::path& p : o.inputs) {
    std::error_code ec;
    if (!fs::is_regular_file(p, ec))
      throw_error(ErrorCode::not_found, kRoom, "tokenizer training input '" + p.string() + "' does not exist");
  }
  if (o.output.empty()) throw_error(ErrorCode::usage, kRoom, "training a tokenizer needs an output path");
  if (o.vocab_size < 8)
    throw_error(ErrorCode::invalid, kRoom, "vocab_size must be at least 8, got " + std::to_string(o.vocab_size));
  if (o.model_type != "unigram" && o.model_type != "bpe" && o.model_type != "char" && o.model_type != "word")
    throw_error(ErrorCode::invalid, kRoom, "model type '" + o.model_type + "' is not one of unigram, bpe, char, word");
  const detail::SpmShim& s = shim();
  std::vector<std::string> files;
  for (const fs::path& p : o.inputs) files.push_back(p.string());
  std::vector<const char*> file_ptrs;
  for (const std::string& f : files) file_ptrs.push_back(f.c_str());
  auto fmt = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return std::string(buf);
  };
  std::vector<std::pair<std::string, std::string>> opts = {
      {"vocab_size", std::to_string(o.vocab_size)},
      {"model_type", o.model_type},
      {"character_coverage", fmt(o.character_coverage)},
      {"pad_piece", "<pad>"},
      {"eos_piece", "</s>"},
      {"unk_piece", "<unk>"},
      {"num_threads", std::to_string(o.num_threads < 1 ? 1 : o.num_threads)},
      {"hard_vocab_limit", "false"},
      {"minloglevel", "2"},
  };
  if (o.llama_layout) {  // Llama's: <unk>=0, <s>=1, </s>=2, no padding, byte fallback
    opts.insert(opts.end(), {{"unk_id", "0"}, {"bos_id", "1"}, {"eos_id", "2"}, {"pad_id", "-1"},
                             {"bos_piece", "<s>"}, {"byte_fallback", "true"}});
  } else {  // T5's: <pad>=0, </s>=1, <unk>=2, no BOS
    opts.insert(opts.end(), {{"pad_id", "0"}, {"eos_id", "1"}, {"unk_id", "2"}, {"bos_id", "-1"}});
  }
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : opts) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  char err[1024] = {0};
  char* model = nullptr;
  std::size_t model_len = 0;
  if (s.train(file_ptrs.data(), file_ptrs.size(), static_cast<std::size_t>(o.input_sentence_size), keys.data(),
              values.data(), keys.size(), &model, &model_len, err, sizeof err) != 0)
    throw_error(ErrorCode::invalid, kRoom, "training the SentencePiece model '" + o.output.string() + "' failed: " + err,
                "check the input files (one sentence per line) and the vocabulary size (it must be smaller than the "
                "number of distinct pieces the text allows)");
  std::string bytes(model, model_len);
  s.free_buffer(model);
  std::error_code ec;
  if (o.output.has_parent_path()) fs::create_directories(o.output.parent_path(), ec);
  io::write_file_atomic(o.output, std::string_view(bytes));
}

fs::path spm_shim_path() { return shim().path; }

}  // namespace gaggle::text
