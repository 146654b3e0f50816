// libgaggle_spm.so — SentencePiece behind a C ABI.
//
// Debian's libsentencepiece links its own protobuf, which crashes before main() when it
// shares a process with LibTorch's. This module is the only thing that links
// -lsentencepiece; lib/text/tokenizer.cpp dlopen()s it with RTLD_LOCAL | RTLD_DEEPBIND so
// its protobuf symbols bind to its own copy. Only C types cross the boundary; every
// function reports failure through a return value and a caller-supplied error buffer.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#define GAGGLE_SPM_API extern "C" __attribute__((visibility("default")))

namespace {

void set_error(char* err, std::size_t err_len, const std::string& message) {
  if (!err || err_len == 0) return;
  std::size_t n = message.size() < err_len - 1 ? message.size() : err_len - 1;
  std::memcpy(err, message.data(), n);
  err[n] = '\0';
}

// Lines of several files, one sentence per line (blank lines skipped), for the trainer.
class FileLines : public sentencepiece::SentenceIterator {
 public:
  FileLines(std::vector<std::string> files, std::size_t max_lines) : files_(std::move(files)), max_(max_lines) {
    advance();
  }
  bool done() const override { return done_; }
  void Next() override { advance(); }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return status_; }

 private:
  void advance() {
    while (!done_) {
      if (max_ && count_ >= max_) {
        done_ = true;
        return;
      }
      if (!in_.is_open()) {
        if (next_file_ >= files_.size()) {
          done_ = true;
          return;
        }
        in_.open(files_[next_file_]);
        if (!in_) {
          status_ = sentencepiece::util::Status(sentencepiece::util::StatusCode::kNotFound,
                                                "cannot open '" + files_[next_file_] + "'");
          done_ = true;
          return;
        }
        ++next_file_;
      }
      if (std::getline(in_, line_)) {
        if (!line_.empty() && line_.back() == '\r') line_.pop_back();
        if (line_.empty()) continue;
        ++count_;
        return;
      }
      in_.close();
      in_.clear();
    }
  }

  std::vector<std::string> files_;
  std::size_t max_;
  std::size_t next_file_ = 0;
  std::size_t count_ = 0;
  std::ifstream in_;
  std::string line_;
  bool done_ = false;
  sentencepiece::util::Status status_;
};

}  // namespace

// ABI version: bump when a signature below changes (the loader checks it).
GAGGLE_SPM_API int gaggle_spm_abi_version() { return 1; }

GAGGLE_SPM_API void* gaggle_spm_load(const char* path, char* err, std::size_t err_len) {
  try {
    auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
    auto status = sp->Load(path);
    if (!status.ok()) {
      set_error(err, err_len, status.ToString());
      return nullptr;
    }
    return sp.release();
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return nullptr;
  }
}

GAGGLE_SPM_API void gaggle_spm_free(void* handle) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(handle);
}

// Encodes text[0..len) into ids. Writes at most `cap` ids to `out` and returns how many
// there are (call again with a larger buffer when the result exceeds cap), or -1 on error.
GAGGLE_SPM_API long gaggle_spm_encode(void* handle, const char* text, std::size_t len, std::int32_t* out,
                                      std::size_t cap, char* err, std::size_t err_len) {
  try {
    auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
    std::vector<int> ids;
    auto status = sp->Encode(std::string_view(text, len), &ids);
    if (!status.ok()) {
      set_error(err, err_len, status.ToString());
      return -1;
    }
    for (std::size_t i = 0; i < ids.size() && i < cap; ++i) out[i] = ids[i];
    return static_cast<long>(ids.size());
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return -1;
  }
}

// Decodes ids into `out` (at most cap bytes, not NUL-terminated); returns the full byte
// length (call again when larger than cap) or -1 on error.
GAGGLE_SPM_API long gaggle_spm_decode(void* handle, const std::int32_t* ids, std::size_t n, char* out,
                                      std::size_t cap, char* err, std::size_t err_len) {
  try {
    auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
    std::vector<int> v(ids, ids + n);
    std::string text;
    auto status = sp->Decode(v, &text);
    if (!status.ok()) {
      set_error(err, err_len, status.ToString());
      return -1;
    }
    std::memcpy(out, text.data(), text.size() < cap ? text.size() : cap);
    return static_cast<long>(text.size());
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return -1;
  }
}

GAGGLE_SPM_API void gaggle_spm_free_buffer(char* buffer) { std::free(buffer); }

GAGGLE_SPM_API int gaggle_spm_piece_size(void* handle) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->GetPieceSize();
}

GAGGLE_SPM_API int gaggle_spm_piece_to_id(void* handle, const char* piece, std::size_t len) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->PieceToId(std::string_view(piece, len));
}

// The piece of `id` as a NUL-terminated string owned by the model (valid until free).
GAGGLE_SPM_API const char* gaggle_spm_id_to_piece(void* handle, int id) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  if (id < 0 || id >= sp->GetPieceSize()) return nullptr;
  return sp->IdToPiece(id).c_str();
}

// which: 0 unk, 1 bos, 2 eos, 3 pad (-1 when the model has none).
GAGGLE_SPM_API int gaggle_spm_special_id(void* handle, int which) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  switch (which) {
    case 0: return sp->unk_id();
    case 1: return sp->bos_id();
    case 2: return sp->eos_id();
    case 3: return sp->pad_id();
    default: return -1;
  }
}

// 1 if `id` is a control symbol (<pad>, </s>, ...), 2 if unknown, 0 otherwise.
GAGGLE_SPM_API int gaggle_spm_piece_kind(void* handle, int id) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  if (sp->IsControl(id)) return 1;
  if (sp->IsUnknown(id)) return 2;
  return 0;
}

// Trains a model. `files`: n_files paths, read line by line (at most max_lines lines; 0 =
// all). `keys`/`values`: n_options trainer flags without the leading dashes (e.g.
// "vocab_size", "model_type"). The serialized model is returned in *out_model (malloc'ed;
// release with gaggle_spm_free_buffer) and *out_len; nothing is written to disk. Returns
// 0, or -1 with the message in err.
GAGGLE_SPM_API int gaggle_spm_train(const char* const* files, std::size_t n_files, std::size_t max_lines,
                                    const char* const* keys, const char* const* values, std::size_t n_options,
                                    char** out_model, std::size_t* out_len, char* err, std::size_t err_len) {
  try {
    std::vector<std::string> paths(files, files + n_files);
    std::unordered_map<std::string, std::string> kwargs;
    for (std::size_t i = 0; i < n_options; ++i) kwargs[keys[i]] = values[i];
    FileLines lines(std::move(paths), max_lines);
    if (!lines.status().ok()) {
      set_error(err, err_len, lines.status().ToString());
      return -1;
    }
    std::string model;
    auto status = sentencepiece::SentencePieceTrainer::Train(kwargs, &lines, &model);
    if (!status.ok()) {
      set_error(err, err_len, status.ToString());
      return -1;
    }
    if (!lines.status().ok()) {
      set_error(err, err_len, lines.status().ToString());
      return -1;
    }
    *out_model = static_cast<char*>(std::malloc(model.size() ? model.size() : 1));
    if (!*out_model) {
      set_error(err, err_len, "out of memory");
      return -1;
    }
    std::memcpy(*out_model, model.data(), model.size());
    *out_len = model.size();
    return 0;
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return -1;
  }
}
