// BIG-Bench Hard: {"examples": [{"input", "target"}]}. The answer options live inside the
// input ("Options:\n(A) ...\n(B) ..." or "Options:\n- Yes\n- No"); they become the choices
// of a rank-classification example. Tasks without options stay generative (exact match).
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/error.h"
#include "io/json_file.h"
#include "tasks/detail/prompt.h"

namespace gaggle::tasks {

bool parse_bbh_options(const std::string& input, std::vector<std::string>& letters, std::vector<std::string>& texts) {
  letters.clear();
  texts.clear();
  static const std::string kMarker = "Options:\n";
  std::size_t at = input.rfind(kMarker);
  if (at == std::string::npos || (at > 0 && input[at - 1] != '\n')) return false;
  std::size_t pos = at + kMarker.size();
  while (pos < input.size()) {
    std::size_t nl = input.find('\n', pos);
    std::string line = input.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? input.size() : nl + 1;
    if (line.size() >= 4 && line[0] == '(' && line[2] == ')' && line[3] == ' ' && line[1] >= 'A' && line[1] <= 'Z') {
      letters.push_back(line.substr(0, 3));
      texts.push_back(detail::trim(line.substr(4)));
    } else if (line.size() >= 3 && line[0] == '-' && line[1] == ' ') {
      std::string t = detail::trim(line.substr(2));
      letters.push_back(t);
      texts.push_back(t);
    } else {
      break;  // the options end where the pattern stops
    }
  }
  if (letters.size() < 2) {
    letters.clear();
    texts.clear();
    return false;
  }
  return true;
}

namespace detail {

ConvertResult convert_bbh(const ConvertOptions& o) {
  ConvertResult r;
  r.task = o.input.stem().string();
  r.templates = {"bbh_as_is"};
  nlohmann::json doc = io::read_json_file(o.input);
  if (!doc.is_object() || !doc.contains("examples") || !doc["examples"].is_array())
    throw_error(ErrorCode::invalid, "tasks", o.input.string() + ": field 'examples': missing or not an array",
                "BIG-Bench Hard files are {\"examples\": [{\"input\": ..., \"target\": ...}]}");
  const auto& examples = doc["examples"];
  std::vector<std::string> letters, texts;
  for (std::size_t i = 0; i < examples.size(); ++i) {
    if (o.limit && r.source_rows >= o.limit) break;
    ++r.source_rows;
    std::string source = o.input.string() + ": examples[" + std::to_string(i) + "]";
    const auto& ex = examples[i];
    for (const char* key : {"input", "target"})
      if (!ex.is_object() || !ex.contains(key) || !ex[key].is_string())
        throw_error(ErrorCode::invalid, "tasks", source + ": field '" + key + "': missing or not a string");
    Example e;
    e.input = ex["input"].get<std::string>();
    std::string target = trim(ex["target"].get<std::string>());
    if (!parse_bbh_options(e.input, letters, texts)) {
      e.target = target;  // generative: exact match on the official target
      r.examples.push_back(std::move(e));
      continue;
    }
    int label = -1;
    for (std::size_t k = 0; k < letters.size() && label < 0; ++k)
      if (letters[k] == target) label = static_cast<int>(k);
    for (std::size_t k = 0; k < texts.size() && label < 0; ++k)
      if (texts[k] == target) label = static_cast<int>(k);
    if (label < 0) {
      ++r.skipped;
      if (r.notes.size() < 5) r.notes.push_back(source + ": target '" + target + "' is none of the parsed options");
      continue;
    }
    e.choices = o.bbh_choices == ChoiceStyle::letters ? letters : texts;
    e.label = label;
    e.target = e.choices[static_cast<std::size_t>(label)];
    r.examples.push_back(std::move(e));
  }
  return r;
}

}  // namespace detail
}  // namespace gaggle::tasks
