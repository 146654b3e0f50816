// The classic classification sets used as real held-in tasks: SST-2 ("<0|1> sentence"),
// TREC ("COARSE:fine question") and AG News (CSV "label","title","description"), with
// T0-style templates (promptsource-like wording) and verbalised labels as choices.
#include "io/atomic_file.h"
#include "io/error.h"
#include "tasks/detail/prompt.h"

namespace gaggle::tasks::detail {
namespace {

[[noreturn]] void line_error(const std::string& source, const std::string& field, const std::string& what,
                             const std::string& hint) {
  throw_error(ErrorCode::invalid, "tasks", source + ": field '" + field + "': " + what, hint);
}

const std::vector<PromptTemplate> kSst2 = {
    {"review_good_or_bad", "{sentence} Did the reviewer find this movie good or bad?", {"bad", "good"}},
    {"positive_negative_after",
     "I'm reading a review that says \"{sentence}\".\n\nDo you think the review is positive or negative?",
     {"negative", "positive"}},
    {"said", "Someone sent me an email with the sentence \"{sentence}\". Do you think they are feeling good or bad?",
     {"bad", "good"}},
    {"following_positive_negative", "{sentence}\nQuestion: Was that sentence positive or negative? Answer:",
     {"negative", "positive"}},
};

// TREC's coarse classes in file order of kTrecCodes.
const char* const kTrecCodes[] = {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"};
const std::string kTrecList = "Abbreviation, Description, Entity, Person, Location, Quantity";
const std::vector<std::string> kTrecChoices = {"Abbreviation", "Description", "Entity", "Person", "Location", "Quantity"};
const std::vector<PromptTemplate> kTrec = {
    {"what_category_best_describe", "Categories: " + kTrecList + "\n\nWhat category best describes: {question} \nAnswer:",
     kTrecChoices},
    {"which_category_best_describes",
     "Which category best describes the following question: {question} \n\nChoose from the following list: \n" + kTrecList,
     kTrecChoices},
    {"pick_the_best_descriptor", "Question: {question}\n\nDescriptors: " + kTrecList + "\n\nBest Descriptor?", kTrecChoices},
    {"is_this_asking_about",
     "{question}\n\nIs this asking about an abbreviation, a description, an entity, a person, a location or a quantity?",
     kTrecChoices},
};

const std::vector<PromptTemplate> kAgNews = {
    {"classify_question_first", "What label best describes this news article?\n{text}",
     {"World politics", "Sports", "Business", "Science and technology"}},
    {"which_section",
     "{text} \nWhich of the following sections of a newspaper would this article likely appear in? World News, Sports, "
     "Business, or Science and Technology?",
     {"World News", "Sports", "Business", "Science and Technology"}},
    {"recommend",
     "Would you recommend the following article to a politician, an athlete, a business executive, or a scientist?\n\n{text}",
     {"Politician", "Athlete", "Business executive", "Scientist"}},
    {"classify_with_choices",
     "{text} \nIs this a piece of news regarding world politics, sports, business, or science and technology?",
     {"World politics", "Sports", "Business", "Science and technology"}},
};

ConvertResult start(const std::string& task, const std::vector<PromptTemplate>& templates) {
  ConvertResult r;
  r.task = task;
  for (const auto& t : templates) r.templates.push_back(t.name);
  return r;
}

// One CSV record (RFC 4180: quoted fields, "" inside quotes, newlines inside quotes).
// Returns false at the end of the text. `line_no` counts physical lines.
bool next_csv_record(const std::string& text, std::size_t& pos, std::size_t& line_no, std::vector<std::string>& fields,
                     const std::string& path) {
  fields.clear();
  if (pos >= text.size()) return false;
  std::size_t start_line = line_no;
  std::string field;
  bool quoted = false, was_quoted = false;
  while (pos < text.size()) {
    char c = text[pos++];
    if (quoted) {
      if (c == '"') {
        if (pos < text.size() && text[pos] == '"') {
          field += '"';
          ++pos;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line_no;
        field += c;
      }
      continue;
    }
    if (c == '"' && field.empty() && !was_quoted) {
      quoted = was_quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
      was_quoted = false;
    } else if (c == '\n') {
      ++line_no;
      break;
    } else if (c != '\r') {
      field += c;
    }
  }
  if (quoted)
    throw_error(ErrorCode::invalid, "tasks",
                path + ":" + std::to_string(start_line) + ": a quoted CSV field is not closed before the end of the file");
  fields.push_back(std::move(field));
  return true;
}

// AG News writes "&#36;" as " #36;" and newlines as "\": make them readable.
std::string clean_agnews(std::string s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" #36;", " $"}, {"#36;", "$"}, {"#39;", "'"}, {"quot;", "\""}, {"#151;", "-"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}, {"\\", " "}};
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
  for (std::size_t at; (at = s.find("  ")) != std::string::npos;) s.erase(at, 1);
  return trim(s);
}

}  // namespace

ConvertResult convert_sst2(const ConvertOptions& o) {
  ConvertResult r = start("sst2", kSst2);
  std::string text = io::read_file(o.input);
  for_each_line(text, [&](const std::string& line, std::size_t line_no) {
    if (o.limit && r.source_rows >= o.limit) return false;
    std::string source = o.input.string() + ":" + std::to_string(line_no);
    if (line.size() < 3 || (line[0] != '0' && line[0] != '1') || line[1] != ' ')
      line_error(source, "label", "a line must start with 0 or 1 and a space, got '" + line.substr(0, 20) + "'",
                 "SST-2 files are lines '<0|1> <sentence>'");
    Fields f{{"sentence", detokenize(line.substr(2))}};
    apply_templates(kSst2, f, line[0] - '0', o.templates, r.source_rows, r.examples);
    ++r.source_rows;
    return true;
  });
  return r;
}

ConvertResult convert_trec(const ConvertOptions& o) {
  ConvertResult r = start("trec", kTrec);
  std::string text = io::read_file(o.input);
  for_each_line(text, [&](const std::string& line, std::size_t line_no) {
    if (o.limit && r.source_rows >= o.limit) return false;
    std::string source = o.input.string() + ":" + std::to_string(line_no);
    std::size_t colon = line.find(':');
    std::size_t space = line.find(' ');
    if (colon == std::string::npos || space == std::string::npos || colon > space)
      line_error(source, "label", "a line must start with COARSE:fine and a space, got '" + line.substr(0, 30) + "'",
                 "TREC files are lines 'COARSE:fine question' (e.g. 'HUM:ind Who wrote Hamlet ?')");
    std::string code = line.substr(0, colon);
    int label = -1;
    for (int k = 0; k < 6; ++k)
      if (code == kTrecCodes[k]) label = k;
    if (label < 0)
      line_error(source, "label", "unknown coarse class '" + code + "' (ABBR, DESC, ENTY, HUM, LOC, NUM)",
                 "TREC files are lines 'COARSE:fine question'");
    Fields f{{"question", detokenize(line.substr(space + 1))}};
    apply_templates(kTrec, f, label, o.templates, r.source_rows, r.examples);
    ++r.source_rows;
    return true;
  });
  return r;
}

ConvertResult convert_agnews(const ConvertOptions& o) {
  ConvertResult r = start("agnews", kAgNews);
  std::string text = io::read_file(o.input);
  std::size_t pos = 0, line_no = 1;
  std::vector<std::string> fields;
  bool first = true;
  while (true) {
    std::size_t record_line = line_no;
    if (!next_csv_record(text, pos, line_no, fields, o.input.string())) break;
    if (fields.size() == 1 && trim(fields[0]).empty()) continue;
    std::string source = o.input.string() + ":" + std::to_string(record_line);
    if (first) {
      first = false;
      if (!fields.empty() && (fields[0] == "Class Index" || fields[0] == "label")) continue;  // header
    }
    if (o.limit && r.source_rows >= o.limit) break;
    if (fields.size() != 3)
      line_error(source, "record", "expected 3 fields (label, title, description), got " + std::to_string(fields.size()),
                 "AG News files are CSV rows \"label\",\"title\",\"description\"");
    std::string l = trim(fields[0]);
    if (l.size() != 1 || l[0] < '1' || l[0] > '4')
      line_error(source, "label", "must be 1, 2, 3 or 4 (World, Sports, Business, Sci/Tech), got '" + l + "'",
                 "AG News files are CSV rows \"label\",\"title\",\"description\"");
    std::string title = clean_agnews(fields[1]);
    std::string description = clean_agnews(fields[2]);
    Fields f{{"text", title.empty() ? description : title + "\n" + description}};
    apply_templates(kAgNews, f, l[0] - '1', o.templates, r.source_rows, r.examples);
    ++r.source_rows;
  }
  return r;
}

}  // namespace gaggle::tasks::detail
