// Converter dispatch and the prompt-template machinery shared by the converters.
#include "tasks/convert.h"

#include "io/error.h"
#include "tasks/detail/prompt.h"

namespace gaggle::tasks {

namespace detail {

std::string trim(const std::string& s) {
  std::size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  std::size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string fill(const std::string& pattern, const Fields& fields, const std::string& template_name) {
  std::string out;
  out.reserve(pattern.size() + 64);
  for (std::size_t i = 0; i < pattern.size();) {
    if (pattern[i] == '{') {
      std::size_t close = pattern.find('}', i);
      if (close != std::string::npos) {
        std::string key = pattern.substr(i + 1, close - i - 1);
        auto it = fields.find(key);
        if (it == fields.end())
          throw_error(ErrorCode::invalid, "tasks", "template '" + template_name + "' uses unknown field '" + key + "'");
        out += it->second;
        i = close + 1;
        continue;
      }
    }
    out += pattern[i++];
  }
  return out;
}

void apply_templates(const std::vector<PromptTemplate>& templates, const Fields& fields, int label,
                     TemplateMode mode, std::size_t row_index, std::vector<Example>& out) {
  auto one = [&](const PromptTemplate& t) {
    Example e;
    e.input = fill(t.input, fields, t.name);
    for (const std::string& c : t.choices) e.choices.push_back(fill(c, fields, t.name));
    e.label = label;
    e.target = e.choices.at(static_cast<std::size_t>(label));
    out.push_back(std::move(e));
  };
  if (mode == TemplateMode::rotate)
    one(templates[row_index % templates.size()]);
  else
    for (const PromptTemplate& t : templates) one(t);
}

std::string detokenize(const std::string& text) {
  static const std::pair<const char*, const char*> kRules[] = {
      {"-lrb- ", "("}, {" -rrb-", ")"}, {"-lrb-", "("}, {"-rrb-", ")"}, {"`` ", "\""}, {" ''", "\""},
      {" n't", "n't"}, {" 's", "'s"},   {" 're", "'re"}, {" 've", "'ve"}, {" 'll", "'ll"}, {" 'd", "'d"},
      {" 'm", "'m"},   {" ,", ","},     {" .", "."},     {" ?", "?"},     {" !", "!"},     {" :", ":"},
      {" ;", ";"},     {" %", "%"},     {"$ ", "$"},
  };
  std::string s = text;
  for (const auto& [from, to] : kRules) {
    std::string f(from), r;
    std::size_t pos = 0;
    for (std::size_t hit; (hit = s.find(f, pos)) != std::string::npos; pos = hit + f.size()) {
      r.append(s, pos, hit - pos);
      r += to;
    }
    r.append(s, pos, std::string::npos);
    s = std::move(r);
  }
  return trim(s);
}

}  // namespace detail

std::vector<std::string> converter_formats() {
  return {"superglue-cb", "superglue-copa", "superglue-rte", "superglue-wic", "superglue-wsc", "superglue-boolq",
          "bbh",          "sst2",           "trec",          "agnews"};
}

ConvertResult convert(const ConvertOptions& o) {
  ConvertResult r;
  const std::string& f = o.format;
  if (f.rfind("superglue-", 0) == 0 && f != "superglue-") {
    std::string task = f.substr(10);
    if (task == "cb" || task == "copa" || task == "rte" || task == "wic" || task == "wsc" || task == "boolq")
      r = detail::convert_superglue(o, task);
  } else if (f == "bbh") {
    r = detail::convert_bbh(o);
  } else if (f == "sst2") {
    r = detail::convert_sst2(o);
  } else if (f == "trec") {
    r = detail::convert_trec(o);
  } else if (f == "agnews") {
    r = detail::convert_agnews(o);
  }
  if (r.task.empty()) {
    std::string known;
    for (const auto& k : converter_formats()) known += (known.empty() ? "" : ", ") + k;
    throw_error(ErrorCode::usage, "tasks", "unknown task format '" + f + "'", "known formats: " + known);
  }
  if (r.examples.empty())
    throw_error(ErrorCode::invalid, "tasks",
                o.input.string() + ": no examples converted (" + std::to_string(r.source_rows) + " rows read, " +
                    std::to_string(r.skipped) + " skipped)" + (r.notes.empty() ? "" : ": " + r.notes.front()),
                "is this a '" + f + "' file?");
  return r;
}

}  // namespace gaggle::tasks
