// gaggle debug tokenize — the base's tokenizer as a conformance runner: texts in, the ids
// Hugging Face's tokenizer for that base gives out ({"cases": [{"text", "input_ids"}...]}):
// T5Tokenizer's (text, then </s>) for T5 bases and --spm models, LlamaTokenizer's (<s>,
// then the text) for Llama bases — the base's token format (model/token_format.h).
#include <iostream>

#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/json_file.h"
#include "model/token_format.h"
#include "text/tokenizer.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

struct TokenizeOptions {
  std::string base;
  std::string spm;
  std::string cases;
  std::string out;
  std::vector<std::string> texts;
  bool no_eos = false;
  bool decode = false;
};

std::vector<std::string> read_case_texts(const std::string& path) {
  nlohmann::json j = io::read_json_file(path);
  const nlohmann::json* cases = &j;
  if (j.is_object()) {
    if (!j.contains("cases"))
      throw_error(ErrorCode::invalid, "cli", "'" + path + "': no field 'cases'",
                  "the file must be {\"cases\": [{\"text\": ...}, ...]}");
    cases = &j["cases"];
  }
  if (!cases->is_array())
    throw_error(ErrorCode::invalid, "cli", "'" + path + "': field 'cases' must be an array");
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < cases->size(); ++i) {
    const nlohmann::json& c = (*cases)[i];
    if (c.is_string()) {
      texts.push_back(c.get<std::string>());
    } else if (c.is_object() && c.contains("text") && c["text"].is_string()) {
      texts.push_back(c["text"].get<std::string>());
    } else {
      throw_error(ErrorCode::invalid, "cli",
                  "'" + path + "': cases[" + std::to_string(i) + "]: field 'text' is missing or not a string");
    }
  }
  return texts;
}

}  // namespace

Runner setup_debug_tokenize(CLI::App& sub) {
  auto opt = std::make_shared<TokenizeOptions>();
  sub.add_option("--base", opt->base, "Base model directory (its spiece.model)");
  sub.add_option("--spm", opt->spm, "A SentencePiece model file instead of --base (100 extra ids)");
  sub.add_option("--cases", opt->cases, "JSON file {\"cases\": [{\"text\": ...}, ...]}");
  sub.add_option("--out", opt->out, "Write {\"cases\": [{\"text\", \"input_ids\"}...]} here (default: stdout)");
  sub.add_option("--text", opt->texts, "A text to tokenize (repeatable)");
  sub.add_flag("--no-eos", opt->no_eos, "The text's ids alone: no EOS (T5), no BOS (Llama)");
  sub.add_flag("--decode", opt->decode, "Also write \"decoded\" (decode with special tokens skipped)");
  set_example(sub,
              "  gaggle debug tokenize --base t5-base --cases tests/data/golden/t5-tokenizer/cases.json --out ids.json\n"
              "  gaggle debug tokenize --base examples/base --text 'The <extra_id_0> walks'");
  return [opt]() -> int {
    if (opt->base.empty() == opt->spm.empty())
      throw_error(ErrorCode::usage, "cli", "give exactly one of --base DIR or --spm FILE");
    if (opt->cases.empty() && opt->texts.empty())
      throw_error(ErrorCode::usage, "cli", "nothing to tokenize: give --cases FILE or --text TEXT");
    auto tok = opt->base.empty() ? text::Tokenizer::load_model_file(opt->spm) : text::Tokenizer::load(opt->base);
    const model::TokenFormat format = opt->base.empty() ? model::t5_token_format(tok.eos_id())
                                                        : model::read_token_format(opt->base, tok.eos_id());
    std::vector<std::string> texts;
    if (!opt->cases.empty()) texts = read_case_texts(opt->cases);
    texts.insert(texts.end(), opt->texts.begin(), opt->texts.end());
    nlohmann::json out;
    out["cases"] = nlohmann::json::array();
    for (const std::string& t : texts) {
      nlohmann::json c;
      c["text"] = t;
      auto ids = tok.encode(t, /*add_eos=*/false);
      if (!opt->no_eos) ids = format.prompt(std::move(ids));
      c["input_ids"] = ids;
      if (opt->decode) c["decoded"] = tok.decode(ids);
      out["cases"].push_back(std::move(c));
    }
    if (opt->out.empty()) {
      std::cout << out.dump(2) << "\n";
    } else {
      io::write_json_file_atomic(opt->out, out);
      std::cerr << "tokenized " << texts.size() << " texts -> " << opt->out << "\n";
    }
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
