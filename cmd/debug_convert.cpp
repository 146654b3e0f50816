// gaggle debug convert — real benchmark files (SuperGLUE, BIG-Bench Hard, SST-2, TREC,
// AG News) into gaggle's task JSONL, with T0-style prompt templates and answer choices;
// and --from llama2c: a llama2.c checkpoint into a Hugging Face Llama base directory.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "io/error.h"
#include "io/llama2c_checkpoint.h"
#include "tasks/convert.h"
#include "tasks/task_data.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

struct ConvertCliOptions {
  std::string from;
  std::vector<std::string> inputs;
  std::string out;
  std::string name;
  std::string templates = "all";
  std::string choices = "letters";
  std::size_t limit = 0;
};

}  // namespace

Runner setup_debug_convert(CLI::App& sub) {
  namespace fs = std::filesystem;
  auto opt = std::make_shared<ConvertCliOptions>();
  std::string formats;
  for (const auto& f : tasks::converter_formats()) formats += (formats.empty() ? "" : ", ") + f;
  sub.add_option("--from", opt->from,
                 "Input format: " + formats + "; or llama2c (a llama2.c checkpoint .bin -> a Hugging Face Llama base)")
      ->required();
  sub.add_option("inputs", opt->inputs, "Input file(s); for bbh also a directory of *.json")->required();
  sub.add_option("--out", opt->out,
                 "Output directory (a benchmark): writes <task>.jsonl; llama2c: the base directory "
                 "(config.json + model.safetensors)")
      ->required();
  sub.add_option("--name", opt->name, "Task name (the file name) instead of the format's (one input only)");
  sub.add_option("--templates", opt->templates,
                 "all: every prompt template on every row (evaluation); rotate: one template per row (training)")
      ->check(CLI::IsMember({"all", "rotate"}));
  sub.add_option("--choices", opt->choices, "bbh: choices are the option letters '(A)' (the official targets) or their text")
      ->check(CLI::IsMember({"letters", "text"}));
  sub.add_option("--limit", opt->limit, "Convert at most N source rows per file (0 = all)");
  set_example(sub,
              "  gaggle debug convert --from superglue-cb superglue/cb/val.jsonl --out heldout\n"
              "  gaggle debug convert --from bbh bbh/ --out bbh-tasks --limit 100\n"
              "  gaggle debug convert --from sst2 classic/sst2/train.txt --out train --templates rotate\n"
              "  gaggle debug convert --from llama2c stories260K.bin --out stories260K-hf");
  return [opt]() -> int {
    if (opt->from == "llama2c") {
      if (opt->inputs.size() != 1)
        throw_error(ErrorCode::usage, "cli", "--from llama2c takes exactly one checkpoint, got " + std::to_string(opt->inputs.size()));
      io::Llama2cHeader h = io::convert_llama2c_to_hf(opt->inputs[0], opt->out);
      std::printf("llama2.c checkpoint %s: dim %lld, %lld layers, %lld/%lld heads, hidden %lld, vocab %lld, %s classifier -> %s\n",
                  opt->inputs[0].c_str(), static_cast<long long>(h.dim), static_cast<long long>(h.n_layers),
                  static_cast<long long>(h.n_heads), static_cast<long long>(h.n_kv_heads),
                  static_cast<long long>(h.hidden_dim), static_cast<long long>(h.vocab_size),
                  h.shared_classifier ? "shared" : "separate", opt->out.c_str());
      return kExitSuccess;
    }
    std::vector<fs::path> files;
    for (const std::string& in : opt->inputs) {
      std::error_code ec;
      if (opt->from == "bbh" && fs::is_directory(in, ec)) {
        std::vector<fs::path> found;
        for (const auto& e : fs::directory_iterator(in))
          if (e.is_regular_file() && e.path().extension() == ".json") found.push_back(e.path());
        std::sort(found.begin(), found.end());
        if (found.empty())
          throw_error(ErrorCode::not_found, "cli", "'" + in + "' holds no BIG-Bench Hard files (*.json)");
        files.insert(files.end(), found.begin(), found.end());
      } else {
        files.emplace_back(in);
      }
    }
    if (!opt->name.empty() && files.size() != 1)
      throw_error(ErrorCode::usage, "cli", "--name needs exactly one input file, got " + std::to_string(files.size()));
    std::error_code ec;
    fs::create_directories(opt->out, ec);
    if (ec) throw_error(ErrorCode::io, "cli", "cannot create '" + opt->out + "': " + ec.message());
    std::size_t total = 0;
    for (const fs::path& file : files) {
      tasks::ConvertOptions co;
      co.format = opt->from;
      co.input = file;
      co.templates = opt->templates == "rotate" ? tasks::TemplateMode::rotate : tasks::TemplateMode::all;
      co.bbh_choices = opt->choices == "text" ? tasks::ChoiceStyle::text : tasks::ChoiceStyle::letters;
      co.limit = opt->limit;
      tasks::ConvertResult r = tasks::convert(co);
      std::string name = opt->name.empty() ? r.task : opt->name;
      fs::path dest = fs::path(opt->out) / (name + ".jsonl");
      tasks::write_task_file(dest, r.examples);
      std::size_t classification = std::count_if(r.examples.begin(), r.examples.end(),
                                                  [](const tasks::Example& e) { return e.is_classification(); });
      std::printf("%-40s %5zu rows x %zu template%s = %6zu examples (%s) -> %s\n", name.c_str(), r.source_rows,
                  r.templates.size(), r.templates.size() == 1 ? " " : "s", r.examples.size(),
                  classification == r.examples.size() ? "choices"
                  : classification == 0               ? "generative"
                                                       : "mixed",
                  dest.c_str());
      if (r.skipped) {
        warn(std::to_string(r.skipped) + " row(s) of '" + file.string() + "' skipped:");
        for (const std::string& n : r.notes) std::fprintf(stderr, "  %s\n", n.c_str());
      }
      total += r.examples.size();
    }
    if (files.size() > 1) std::printf("%zu files, %zu examples -> %s\n", files.size(), total, opt->out.c_str());
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
