#pragma once
// The T5 tokenizer: a SentencePiece unigram model (spiece.model) applied exactly as
// Hugging Face's slow T5Tokenizer does it — the `<extra_id_N>` sentinels (id
// vocab_size_spm + 99 - N) and a literal `</s>` / `<pad>` / `<unk>` in the text are split
// out as single tokens, the pieces between them go through SentencePiece, EOS is appended.
//
// libsentencepiece carries its own protobuf, which crashes next to LibTorch's, so
// SentencePiece lives in a C-ABI shim (libgaggle_spm.so) that is dlopen()ed with
// RTLD_DEEPBIND. It is searched next to the running executable (/proc/self/exe), then in
// <prefix>/lib/gaggle beside an installed binary, then at $GAGGLE_SPM_SHIM.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gaggle::text {

class Tokenizer {
 public:
  // `base_dir`/spiece.model (T5, 100 sentinels), else `base_dir`/tokenizer.model (Llama's
  // name; no sentinels, a padding piece optional: pad_id() -1). A directory with only
  // tokenizer.json, or with none, is an Error naming the directory (with a hint).
  static Tokenizer load(const std::filesystem::path& base_dir);
  // A SentencePiece model file, with `extra_ids` sentinels after its vocabulary (T5: 100).
  static Tokenizer load_model_file(const std::filesystem::path& spiece_model, int extra_ids = 100);

  // Token ids of `text`; EOS (`</s>`) appended when add_eos.
  std::vector<std::int64_t> encode(std::string_view text, bool add_eos = true) const;
  // Text of `ids`; with skip_special, pad, EOS, unk and the sentinels are dropped (as
  // HF's decode(skip_special_tokens=True), clean-up of spaces before punctuation
  // included); without, they are written by name. Ids outside the vocabulary are an Error.
  std::string decode(const std::vector<std::int64_t>& ids, bool skip_special = true) const;

  // The piece of one id (sentinels: "<extra_id_N>"), and the id of a piece (unk if none).
  std::string id_to_piece(std::int64_t id) const;
  std::int64_t piece_to_id(std::string_view piece) const;

  std::int64_t vocab_size() const;  // SentencePiece pieces + extra ids (T5: 32000 + 100)
  std::int64_t pad_id() const;      // 0 for T5; -1 when the model has none (Llama)
  std::int64_t eos_id() const;      // 1 for T5
  std::int64_t unk_id() const;      // 2 for T5
  std::int64_t sentinel_id(int n) const;  // <extra_id_n>: vocab_size() - 1 - n
  int extra_ids() const;
  const std::filesystem::path& model_path() const;

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

// Trains a SentencePiece model on text files (one sentence per line, blank lines skipped)
// through the shim, T5-style: <pad>=0, </s>=1, <unk>=2, no BOS, NFKC normalisation; or
// Llama-style (llama_layout): <unk>=0, <s>=1, </s>=2, no padding piece, byte fallback
// (a character outside the vocabulary becomes its UTF-8 bytes, <0xNN>, instead of unk).
// Writes the binary model to `output` (e.g. DIR/spiece.model) atomically. Errors name the
// input or the option.
struct TrainOptions {
  std::vector<std::filesystem::path> inputs;
  std::filesystem::path output;        // e.g. examples/base/spiece.model
  int vocab_size = 1000;               // pieces, before the extra ids
  std::string model_type = "unigram";  // unigram | bpe | char | word
  double character_coverage = 1.0;
  int input_sentence_size = 0;  // read at most this many lines (0: all), in file order
  int num_threads = 1;
  bool llama_layout = false;
};
void train_sentencepiece(const TrainOptions& options);

// Where the shim was found (for selfcheck and errors); loads it on first use.
std::filesystem::path spm_shim_path();

}  // namespace gaggle::text
