// gaggle debug train-spm — trains a T5-style SentencePiece model (<pad>=0, </s>=1,
// <unk>=2, no BOS) on text files, through the same shim the tokenizer uses.
#include <cstdio>
#include <iostream>

#include "io/error.h"
#include "text/tokenizer.h"
#include "verbs.h"

namespace gaggle::cli {

Runner setup_debug_train_spm(CLI::App& sub) {
  auto opt = std::make_shared<text::TrainOptions>();
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  auto extra_ids = std::make_shared<int>(100);
  sub.add_option("--input", *inputs, "Text file(s), one sentence per line (repeatable)")->required();
  sub.add_option("--out", *out, "The model file to write, e.g. DIR/spiece.model")->required();
  sub.add_option("--vocab-size", opt->vocab_size, "Pieces before the extra ids (an upper bound for small corpora)")
      ->capture_default_str()
      ->check(CLI::Range(8, 1000000));
  sub.add_option("--model-type", opt->model_type, "unigram, bpe, char or word")
      ->capture_default_str()
      ->check(CLI::IsMember({"unigram", "bpe", "char", "word"}));
  sub.add_option("--character-coverage", opt->character_coverage, "Share of characters the vocabulary must cover")
      ->capture_default_str()
      ->check(CLI::Range(0.9, 1.0));
  sub.add_option("--max-lines", opt->input_sentence_size, "Read at most N lines, in file order (0 = all)")->capture_default_str();
  sub.add_option("--threads", opt->num_threads, "Trainer threads")->capture_default_str()->check(CLI::Range(1, 256));
  sub.add_flag("--llama", opt->llama_layout,
               "Llama's layout (<unk>=0, <s>=1, </s>=2, no padding, byte fallback) for a tokenizer.model; "
               "use with --extra-ids 0");
  sub.add_option("--extra-ids", *extra_ids, "Sentinels the tokenizer adds after the pieces (for the summary)")
      ->capture_default_str();
  set_example(sub,
              "  gaggle debug make-tasks --out suite --seed 0\n"
              "  gaggle debug train-spm --input suite/corpus/tokenizer.txt --vocab-size 1000 --out mybase/spiece.model\n"
              "  gaggle debug train-spm --input corpus.txt --model-type bpe --llama --extra-ids 0 --out llama/tokenizer.model");
  return [opt, inputs, out, extra_ids]() -> int {
    for (const auto& i : *inputs) opt->inputs.emplace_back(i);
    opt->output = *out;
    std::cerr << "training a " << opt->model_type << " SentencePiece model on " << inputs->size() << " file(s)...\n";
    text::train_sentencepiece(*opt);
    auto tok = text::Tokenizer::load_model_file(*out, *extra_ids);
    std::printf("%s: %lld pieces + %d extra ids = vocabulary %lld (pad %lld, eos %lld, unk %lld)\n", out->c_str(),
                static_cast<long long>(tok.vocab_size() - tok.extra_ids()), tok.extra_ids(),
                static_cast<long long>(tok.vocab_size()), static_cast<long long>(tok.pad_id()),
                static_cast<long long>(tok.eos_id()), static_cast<long long>(tok.unk_id()));
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
