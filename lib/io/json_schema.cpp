#include "io/json_schema.h"

#include <cmath>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/json_file.h"
#include "io/pattern.h"

namespace gaggle::io {
namespace detail {
extern const char* const kEmbeddedSchemaNames[];
extern const char* const kEmbeddedSchemaTexts[];
extern const std::size_t kEmbeddedSchemaCount;
}  // namespace detail

namespace {

using json = nlohmann::json;

std::string escape_pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out.push_back(c);
  }
  return out;
}

std::size_t utf8_length(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

bool has_type(const json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  if (type == "number") return v.is_number();
  if (type == "integer") {
    if (v.is_number_integer()) return true;
    if (v.is_number_float()) {
      // A whole number that fits a 64-bit integer (as 3.0 does). Range first: converting
      // a double outside it (1e81, from a fuzzed manifest) to an integer is undefined.
      const double d = v.get<double>();
      return d >= -0x1p63 && d < 0x1p63 && std::trunc(d) == d;
    }
    return false;
  }
  throw_error(ErrorCode::unsupported, "io", "schema: unknown type '" + type + "'");
}

std::string type_name(const json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) return "number";
  return v.type_name();
}

const Pattern& compiled(const std::string& pattern) {
  static std::mutex mu;
  static std::map<std::string, Pattern> cache;
  std::lock_guard lock(mu);
  auto it = cache.find(pattern);
  if (it == cache.end()) {
    it = cache.emplace(pattern, Pattern(pattern, Pattern::Anchor::search)).first;
    if (!it->second.error().empty())
      throw_error(ErrorCode::invalid, "io",
                  "schema: pattern '" + pattern + "' is not a valid regular expression: " + it->second.error());
  }
  return it->second;
}

class Validator {
 public:
  explicit Validator(std::size_t max) : max_(max) {}
  std::vector<SchemaViolation> out;

  void check(const json& v, const json& s, const std::string& ptr) {
    if (full()) return;
    if (s.is_boolean()) {
      if (!s.get<bool>()) add(ptr, "is not allowed here");
      return;
    }
    if (!s.is_object()) throw_error(ErrorCode::invalid, "io", "schema at '" + ptr + "' is not an object");
    for (auto it = s.begin(); it != s.end(); ++it) {
      static const char* known[] = {"type", "required", "properties", "additionalProperties", "items", "enum", "const",
                                    "pattern", "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems",
                                    "$schema", "$id", "title", "description", "examples", "default", "$comment"};
      bool ok = false;
      for (const char* k : known) ok = ok || it.key() == k;
      if (!ok)
        throw_error(ErrorCode::unsupported, "io", "schema keyword '" + it.key() + "' is not supported by gaggle's validator",
                    "use the keywords listed in io/json_schema.h");
    }
    if (auto t = s.find("type"); t != s.end()) {
      bool ok = false;
      std::string want;
      if (t->is_string()) {
        ok = has_type(v, t->get<std::string>());
        want = t->get<std::string>();
      } else {
        for (const auto& one : *t) {
          ok = ok || has_type(v, one.get<std::string>());
          want += (want.empty() ? "" : " or ") + one.get<std::string>();
        }
      }
      if (!ok) {
        add(ptr, "must be " + article(want) + ", not " + article(type_name(v)));
        return;
      }
    }
    if (auto e = s.find("enum"); e != s.end()) {
      bool ok = false;
      for (const auto& one : *e) ok = ok || one == v;
      if (!ok) add(ptr, "must be one of " + e->dump() + ", not " + v.dump());
    }
    if (auto c = s.find("const"); c != s.end() && *c != v) add(ptr, "must be " + c->dump() + ", not " + v.dump());
    if (v.is_string()) check_string(v.get_ref<const std::string&>(), s, ptr);
    if (v.is_number()) check_number(v, s, ptr);
    if (v.is_array()) check_array(v, s, ptr);
    if (v.is_object()) check_object(v, s, ptr);
  }

 private:
  bool full() const { return out.size() >= max_; }
  void add(const std::string& ptr, std::string msg) {
    if (!full()) out.push_back({ptr, std::move(msg)});
  }
  static std::string article(const std::string& t) {
    bool vowel = !t.empty() && std::string("aeiou").find(t[0]) != std::string::npos;
    return (t == "null" ? "" : vowel ? "an " : "a ") + t;
  }

  void check_string(const std::string& str, const json& s, const std::string& ptr) {
    std::size_t len = utf8_length(str);
    if (auto m = s.find("minLength"); m != s.end() && len < m->get<std::size_t>())
      add(ptr, "is too short (" + std::to_string(len) + " characters, at least " + m->dump() + ")");
    if (auto m = s.find("maxLength"); m != s.end() && len > m->get<std::size_t>())
      add(ptr, "is too long (" + std::to_string(len) + " characters, at most " + m->dump() + ")");
    if (auto p = s.find("pattern"); p != s.end()) {
      const PatternMatch m = compiled(p->get<std::string>()).match(str);
      if (!m.matched)
        add(ptr, "\"" + (str.size() > 80 ? str.substr(0, 80) + "..." : str) + "\" does not match pattern '" +
                     p->get<std::string>() + "'" + (m.error.empty() ? "" : " (" + m.error + ")"));
    }
  }

  void check_number(const json& v, const json& s, const std::string& ptr) {
    double d = v.get<double>();
    if (auto m = s.find("minimum"); m != s.end() && d < m->get<double>()) add(ptr, "must be at least " + m->dump() + ", not " + v.dump());
    if (auto m = s.find("maximum"); m != s.end() && d > m->get<double>()) add(ptr, "must be at most " + m->dump() + ", not " + v.dump());
  }

  void check_array(const json& v, const json& s, const std::string& ptr) {
    if (auto m = s.find("minItems"); m != s.end() && v.size() < m->get<std::size_t>())
      add(ptr, "has " + std::to_string(v.size()) + " items, at least " + m->dump() + " needed");
    if (auto m = s.find("maxItems"); m != s.end() && v.size() > m->get<std::size_t>())
      add(ptr, "has " + std::to_string(v.size()) + " items, at most " + m->dump() + " allowed");
    if (auto items = s.find("items"); items != s.end())
      for (std::size_t i = 0; i < v.size() && !full(); ++i) check(v[i], *items, ptr + "/" + std::to_string(i));
  }

  void check_object(const json& v, const json& s, const std::string& ptr) {
    if (auto r = s.find("required"); r != s.end())
      for (const auto& name : *r)
        if (!v.contains(name.get<std::string>()))
          add(ptr + "/" + escape_pointer_token(name.get<std::string>()), "is required but missing");
    auto props = s.find("properties");
    auto extra = s.find("additionalProperties");
    for (auto it = v.begin(); it != v.end() && !full(); ++it) {
      std::string child = ptr + "/" + escape_pointer_token(it.key());
      if (props != s.end() && props->contains(it.key())) {
        check(it.value(), (*props)[it.key()], child);
      } else if (extra != s.end()) {
        if (extra->is_boolean() && !extra->get<bool>()) add(child, "is not an allowed field");
        else check(it.value(), *extra, child);
      }
    }
  }

  std::size_t max_;
};

}  // namespace

std::vector<SchemaViolation> schema_violations(const json& value, const json& schema, std::size_t max_violations) {
  Validator v(max_violations == 0 ? 1 : max_violations);
  v.check(value, schema, "");
  return std::move(v.out);
}

void validate_json(const json& value, const json& schema, const std::string& source) {
  auto problems = schema_violations(value, schema, 1);
  if (problems.empty()) return;
  const auto& p = problems.front();
  std::string where = p.pointer.empty() ? std::string("the document") : p.pointer;
  std::string title = schema.is_object() && schema.contains("title") && schema["title"].is_string()
                          ? " (schema: " + schema["title"].get<std::string>() + ")"
                          : "";
  throw_error(ErrorCode::invalid, "io", source + ": " + where + ": " + p.message, "the file does not follow its format" + title);
}

const json& embedded_schema(std::string_view name) {
  static std::mutex mu;
  static std::map<std::string, json, std::less<>> parsed;
  std::lock_guard lock(mu);
  if (auto it = parsed.find(name); it != parsed.end()) return it->second;
  for (std::size_t i = 0; i < detail::kEmbeddedSchemaCount; ++i) {
    if (name == detail::kEmbeddedSchemaNames[i]) {
      json s = parse_json(detail::kEmbeddedSchemaTexts[i], "embedded schema '" + std::string(name) + "'");
      return parsed.emplace(std::string(name), std::move(s)).first->second;
    }
  }
  throw_error(ErrorCode::not_found, "io", "no embedded schema named '" + std::string(name) + "'",
              "schemas are compiled in from manifests/*.schema.json; rebuild after adding one");
}

std::vector<std::string> embedded_schema_names() {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < detail::kEmbeddedSchemaCount; ++i) names.emplace_back(detail::kEmbeddedSchemaNames[i]);
  return names;
}

}  // namespace gaggle::io
