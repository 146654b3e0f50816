#pragma once
// Prompt templates for the converters: "{field}" placeholders filled from a row's fields.
#include <map>
#include <string>
#include <vector>

#include "tasks/convert.h"

namespace gaggle::tasks::detail {

struct PromptTemplate {
  std::string name;
  std::string input;                 // e.g. "{premise}\nQuestion: {hypothesis} True or False?"
  std::vector<std::string> choices;  // answer strings, may hold placeholders ("{choice1}")
};

using Fields = std::map<std::string, std::string>;

// Replaces every "{name}" with fields.at(name); an unknown name is an Error naming the
// template (a bug in the template table, not user input).
std::string fill(const std::string& pattern, const Fields& fields, const std::string& template_name);

// Applies the templates to one labelled row and appends the examples.
void apply_templates(const std::vector<PromptTemplate>& templates, const Fields& fields, int label,
                     TemplateMode mode, std::size_t row_index, std::vector<Example>& out);

// Undoes the Penn-Treebank-style tokenisation of SST-2 and TREC (" ," -> ",", " n't" ->
// "n't", "-lrb-" -> "(" ...).
std::string detokenize(const std::string& text);

// Trims ASCII whitespace on both ends.
std::string trim(const std::string& s);

// Iterates the lines of a text file: calls fn(line, line_number) for each non-blank line.
template <typename Fn>
void for_each_line(const std::string& text, Fn fn) {
  std::size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::size_t end = nl == std::string::npos ? text.size() : nl;
    std::string line = text.substr(pos, end - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    if (!fn(line, line_no)) break;
  }
}

ConvertResult convert_superglue(const ConvertOptions& o, const std::string& task);
ConvertResult convert_bbh(const ConvertOptions& o);
ConvertResult convert_sst2(const ConvertOptions& o);
ConvertResult convert_trec(const ConvertOptions& o);
ConvertResult convert_agnews(const ConvertOptions& o);

}  // namespace gaggle::tasks::detail
