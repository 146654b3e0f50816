// SuperGLUE (CB, COPA, RTE, WiC, WSC, BoolQ) in its own JSONL fields -> prompted rank-
// classification examples. Templates follow the wording of T0's promptsource prompts
// (several per task); choices are the verbalised labels.
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/error.h"
#include "tasks/detail/prompt.h"

namespace gaggle::tasks::detail {
namespace {

using Json = nlohmann::json;

[[noreturn]] void row_error(const std::string& source, const std::string& field, const std::string& what) {
  throw_error(ErrorCode::invalid, "tasks", source + ": field '" + field + "': " + what,
              "the converter reads SuperGLUE's own JSONL (e.g. FewGLUE / the official val.jsonl)");
}

std::string str_field(const Json& row, const std::string& key, const std::string& source) {
  auto it = row.find(key);
  if (it == row.end()) row_error(source, key, "missing");
  if (!it->is_string()) row_error(source, key, std::string("must be a string, got ") + it->type_name());
  return it->get<std::string>();
}

int bool_label(const Json& row, const std::string& source) {
  auto it = row.find("label");
  if (it == row.end()) row_error(source, "label", "missing (unlabelled test rows cannot be scored)");
  if (it->is_boolean()) return it->get<bool>() ? 1 : 0;
  if (it->is_number_integer() && (it->get<int>() == 0 || it->get<int>() == 1)) return it->get<int>();
  if (it->is_string() && (*it == "true" || *it == "false")) return *it == "true" ? 1 : 0;
  row_error(source, "label", "must be true or false, got " + it->dump());
}

int string_label(const Json& row, const std::vector<std::string>& names, const std::string& source) {
  auto it = row.find("label");
  if (it == row.end()) row_error(source, "label", "missing (unlabelled test rows cannot be scored)");
  if (it->is_string())
    for (std::size_t i = 0; i < names.size(); ++i)
      if (*it == names[i]) return static_cast<int>(i);
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  row_error(source, "label", "must be one of " + known + ", got " + it->dump());
}

std::string lower_first(std::string s) {
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

std::string strip_final_period(std::string s) {
  s = trim(s);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::string strip_final_question_mark(std::string s) {
  s = trim(s);
  if (!s.empty() && s.back() == '?') s.pop_back();
  return s;
}

std::vector<PromptTemplate> nli_templates(bool three_way) {
  std::vector<std::string> yes_no = three_way ? std::vector<std::string>{"Yes", "No", "Maybe"}
                                              : std::vector<std::string>{"Yes", "No"};
  std::string ynm = three_way ? "Yes, no, or maybe?" : "Yes or no?";
  return {
      {"gpt3_style", std::string("{premise}\nQuestion: {hypothesis} ") + (three_way ? "True, False, or Neither?" : "True or False?"),
       three_way ? std::vector<std::string>{"True", "False", "Neither"} : std::vector<std::string>{"True", "False"}},
      {"mnli_crowdsource",
       std::string("{premise} Using only the above description and what you know about the world, \"{hypothesis}\" is "
                   "definitely correct") + (three_way ? ", incorrect, or inconclusive?" : " or incorrect?"),
       three_way ? std::vector<std::string>{"Correct", "Incorrect", "Inconclusive"}
                 : std::vector<std::string>{"Correct", "Incorrect"}},
      {"based_on_the_previous_passage", "{premise} Based on the previous passage, is it true that \"{hypothesis}\"? " + ynm,
       yes_no},
      {"can_we_infer", "Suppose {premise} Can we infer that \"{hypothesis}\"? " + ynm, yes_no},
      {"guaranteed_true", "Given {premise} Is it guaranteed true that \"{hypothesis}\"? " + ynm, yes_no},
  };
}

const std::vector<PromptTemplate>& templates_for(const std::string& task) {
  static const std::vector<PromptTemplate> cb = nli_templates(true);
  static const std::vector<PromptTemplate> rte = nli_templates(false);
  static const std::vector<PromptTemplate> copa = {
      {"best_option", "{premise}\n\nWhat's the best option?\n- {choice1}\n- {choice2}\n\nWe are looking for {a_cause_or_effect}",
       {"{choice1}", "{choice2}"}},
      {"cause_effect", "{premise}\n\nSelect the most plausible {cause_or_effect}:\n- {choice1}\n- {choice2}",
       {"{choice1}", "{choice2}"}},
      {"plausible_alternatives", "{premise} {what_happened}\nHelp me pick the more plausible option:\n- {choice1}\n- {choice2}",
       {"{choice1}", "{choice2}"}},
      {"choice1_or_choice2", "\"{choice1}\" or \"{choice2}\"? {premise_np} {because_so}",
       {"{choice1_lc}", "{choice2_lc}"}},
  };
  static const std::vector<PromptTemplate> wic = {
      {"gpt3_prompt", "{sentence1}\n{sentence2}\nQuestion: Is the word '{word}' used in the same sense in the two sentences above?",
       {"No", "Yes"}},
      {"same_sense",
       "Sentence 1: {sentence1}\nSentence 2: {sentence2}\n\nDetermine whether the word \"{word}\" is used in the same sense "
       "in both sentences. Yes or no?",
       {"No", "Yes"}},
      {"question_context_meaning",
       "Does the word \"{word}\" have the same meaning in these two sentences? Yes, No?\n{sentence1}\n{sentence2}",
       {"No", "Yes"}},
      {"polysemous",
       "The word \"{word}\" has multiple meanings. Does it have the same meaning in sentences 1 and 2? Yes or no?\n\n"
       "Sentence 1: {sentence1}\nSentence 2: {sentence2}",
       {"No", "Yes"}},
  };
  static const std::vector<PromptTemplate> wsc = {
      {"gpt3_style", "Passage: {text} \n\nQuestion: In the passage above, does the pronoun \"{span2}\" refer to {span1}?\n\nAnswer:",
       {"No", "Yes"}},
      {"does_the_pronoun_refer_to", "{text} In the previous sentence, does the pronoun \"{span2_lc}\" refer to {span1}? Yes or no?",
       {"No", "Yes"}},
      {"replaced_with", "{text} In the previous sentence, can the pronoun \"{span2}\" be replaced with \"{span1}\"? Yes or no?",
       {"No", "Yes"}},
      {"the_pronoun_refers_to", "{text} \nIn the passage above, the pronoun \"{span2}\" refers to {span1}. True or false?",
       {"False", "True"}},
  };
  static const std::vector<PromptTemplate> boolq = {
      {"gpt3_style", "{passage}\nQuestion: {question}?\nAnswer:", {"No", "Yes"}},
      {"yes_no_question", "Text: {passage}\n\nAnswer the following yes/no question: {question}? Yes or no?", {"No", "Yes"}},
      {"after_reading", "Passage: {passage}\n\nAfter reading this passage, I have a question: {question}? True or False?",
       {"False", "True"}},
      {"based_on_the_previous_passage", "{passage} Based on the previous passage, {question}?", {"No", "Yes"}},
  };
  if (task == "cb") return cb;
  if (task == "rte") return rte;
  if (task == "copa") return copa;
  if (task == "wic") return wic;
  if (task == "wsc") return wsc;
  return boolq;
}

// The fields one row offers to the templates, and its label index.
int row_fields(const std::string& task, const Json& row, const std::string& source, Fields& f) {
  if (task == "cb" || task == "rte") {
    f["premise"] = trim(str_field(row, "premise", source));
    f["hypothesis"] = trim(str_field(row, "hypothesis", source));
    return task == "cb" ? string_label(row, {"entailment", "contradiction", "neutral"}, source)
                        : string_label(row, {"entailment", "not_entailment"}, source);
  }
  if (task == "copa") {
    f["premise"] = trim(str_field(row, "premise", source));
    f["premise_np"] = strip_final_period(f["premise"]);
    f["choice1"] = trim(str_field(row, "choice1", source));
    f["choice2"] = trim(str_field(row, "choice2", source));
    f["choice1_lc"] = lower_first(strip_final_period(f["choice1"]));
    f["choice2_lc"] = lower_first(strip_final_period(f["choice2"]));
    std::string q = str_field(row, "question", source);
    if (q != "cause" && q != "effect") row_error(source, "question", "must be \"cause\" or \"effect\", got \"" + q + "\"");
    bool cause = q == "cause";
    f["cause_or_effect"] = q;
    f["a_cause_or_effect"] = cause ? "a cause" : "an effect";
    f["what_happened"] = cause ? "This happened because..." : "As a consequence...";
    f["because_so"] = cause ? "because" : "so";
    auto it = row.find("label");
    if (it == row.end()) row_error(source, "label", "missing (unlabelled test rows cannot be scored)");
    if (!it->is_number_integer() || (it->get<int>() != 0 && it->get<int>() != 1))
      row_error(source, "label", "must be 0 or 1, got " + it->dump());
    return it->get<int>();
  }
  if (task == "wic") {
    f["word"] = trim(str_field(row, "word", source));
    f["sentence1"] = trim(str_field(row, "sentence1", source));
    f["sentence2"] = trim(str_field(row, "sentence2", source));
    return bool_label(row, source);
  }
  if (task == "wsc") {
    f["text"] = trim(str_field(row, "text", source));
    auto it = row.find("target");
    if (it == row.end() || !it->is_object()) row_error(source, "target", "missing or not an object with span1_text, span2_text");
    f["span1"] = trim(str_field(*it, "span1_text", source + ": target"));
    f["span2"] = trim(str_field(*it, "span2_text", source + ": target"));
    f["span2_lc"] = lower_first(f["span2"]);
    return bool_label(row, source);
  }
  // boolq
  f["passage"] = trim(str_field(row, "passage", source));
  f["question"] = strip_final_question_mark(str_field(row, "question", source));
  return bool_label(row, source);
}

}  // namespace

ConvertResult convert_superglue(const ConvertOptions& o, const std::string& task) {
  ConvertResult r;
  r.task = task;
  const auto& templates = templates_for(task);
  for (const auto& t : templates) r.templates.push_back(t.name);
  std::string text = io::read_file(o.input);
  for_each_line(text, [&](const std::string& line, std::size_t line_no) {
    if (o.limit && r.source_rows >= o.limit) return false;
    std::string source = o.input.string() + ":" + std::to_string(line_no);
    Json row;
    try {
      row = Json::parse(line);
    } catch (const Json::parse_error& e) {
      throw_error(ErrorCode::invalid, "tasks", source + ": invalid JSON: " + e.what(), "SuperGLUE files are JSONL");
    }
    if (!row.is_object()) throw_error(ErrorCode::invalid, "tasks", source + ": a line must be a JSON object");
    Fields f;
    int label = row_fields(task, row, source, f);
    apply_templates(templates, f, label, o.templates, r.source_rows, r.examples);
    ++r.source_rows;
    return true;
  });
  return r;
}

}  // namespace gaggle::tasks::detail
