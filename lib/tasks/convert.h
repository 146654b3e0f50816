#pragma once
// Converters from real benchmark formats into gaggle's task JSONL (task_data.h), with
// T0-style prompt templates (promptsource-like wording, several per task) and answer
// choices for rank classification.
//
//   superglue-cb|copa|rte|wic|wsc|boolq   SuperGLUE's own JSONL (train/val; labelled rows)
//   bbh                                   BIG-Bench Hard {"examples": [{"input", "target"}]}:
//                                         choices parsed from the "Options:" in the input;
//                                         tasks without options stay generative
//   sst2                                  lines "<0|1> <sentence>"
//   trec                                  lines "COARSE:fine question"
//   agnews                                CSV "label","title","description" (labels 1-4)
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "tasks/task_data.h"

namespace gaggle::tasks {

enum class TemplateMode {
  all,     // every template applied to every row (T0-style evaluation: mean over prompts)
  rotate,  // row i gets template i % n (training data: one prompt per row)
};

enum class ChoiceStyle {
  letters,  // BBH: choices "(A)", "(B)", ... — the official targets
  text,     // BBH: the options' own text
};

struct ConvertOptions {
  std::string format;  // see converter_formats()
  std::filesystem::path input;
  TemplateMode templates = TemplateMode::all;
  ChoiceStyle bbh_choices = ChoiceStyle::letters;
  std::size_t limit = 0;  // at most this many source rows (0: all)
};

struct ConvertResult {
  std::string task;  // default task name: "cb", "sst2", or the BBH file's stem
  std::vector<Example> examples;
  std::vector<std::string> templates;  // names of the templates used
  std::size_t source_rows = 0;         // rows read from the input
  std::size_t skipped = 0;             // rows that could not be converted (see notes)
  std::vector<std::string> notes;      // why rows were skipped (first few, "FILE:LINE: ...")
};

// The formats --from accepts, in a stable order.
std::vector<std::string> converter_formats();

// Converts one input file. Errors name the file, the line (or example index) and the
// field; an unknown format is an Error{usage} listing the known ones. A file that yields
// no examples is an Error.
ConvertResult convert(const ConvertOptions& options);

// For BBH-style inputs: the options after "\nOptions:\n" ("(A) text" or "- text" lines).
// Returns false when the input has none. letters[i] is "(A)"..., or the text itself for
// "- text" options.
bool parse_bbh_options(const std::string& input, std::vector<std::string>& letters, std::vector<std::string>& texts);

}  // namespace gaggle::tasks
