// The synthetic suite's world (words, facts, Zorbish) and its 12 held-in and 8 held-out
// task definitions. Every held-out task composes the skills of two held-in tasks, and its
// distractors include what each skill alone would answer.
#include <algorithm>
#include <set>
#include <stdexcept>

#include "tasks/detail/synthetic_world.h"

namespace gaggle::tasks::detail {

std::uint64_t fnv1a64(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

bool in_split(const std::string& key, const std::string& split) {
  std::uint64_t bucket = fnv1a64(key) % 10;
  if (split == "eval") return bucket == 0;
  if (split == "validation") return bucket == 1;
  return bucket >= 2;
}

std::string join(const std::vector<std::string>& words, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) out += (i ? sep : "") + words[i];
  return out;
}

std::string plural(const std::string& w) {
  auto ends = [&](const std::string& s) { return w.size() >= s.size() && w.compare(w.size() - s.size(), s.size(), s) == 0; };
  if (ends("s") || ends("x") || ends("ch") || ends("sh") || ends("o")) return w + "es";
  if (ends("y") && w.size() > 1 && std::string("aeiou").find(w[w.size() - 2]) == std::string::npos)
    return w.substr(0, w.size() - 1) + "ies";
  return w + "s";
}

std::vector<std::string> World::nouns() const {
  std::vector<std::string> v = animals;
  v.insert(v.end(), fruits.begin(), fruits.end());
  v.insert(v.end(), tools.begin(), tools.end());
  return v;
}

std::vector<std::string> World::things() const {
  std::vector<std::string> v = nouns();
  v.insert(v.end(), colors.begin(), colors.end());
  return v;
}

const World& world() {
  static const World w = [] {
    World w;
    w.animals = {"cat", "dog", "fox", "owl", "cow", "pig", "rat", "bee", "hen", "yak", "ant", "elk"};
    w.fruits = {"apple", "banana", "lemon", "lime", "plum", "grape", "cherry", "kiwi", "mango", "pear"};
    w.colors = {"red", "yellow", "green", "purple", "brown", "orange", "blue", "white", "black", "pink"};
    w.tools = {"saw", "drill", "hammer", "rake", "axe", "wrench", "shovel", "chisel"};
    w.categories = {"animal", "fruit", "color", "tool"};
    for (const auto& a : w.animals) w.category_of[a] = "animal";
    for (const auto& f : w.fruits) w.category_of[f] = "fruit";
    for (const auto& c : w.colors) w.category_of[c] = "color";
    for (const auto& t : w.tools) w.category_of[t] = "tool";
    w.fruit_color = {{"apple", "red"},   {"banana", "yellow"}, {"lemon", "yellow"}, {"lime", "green"},
                     {"plum", "purple"}, {"grape", "purple"},  {"cherry", "red"},   {"kiwi", "brown"},
                     {"mango", "orange"}, {"pear", "green"}};
    const std::pair<const char*, const char*> pairs[] = {
        {"good", "bad"},  {"great", "awful"}, {"happy", "sad"},  {"tasty", "bland"}, {"kind", "rude"},
        {"fun", "boring"}, {"hot", "cold"},   {"big", "small"},  {"fast", "slow"},   {"old", "new"},
        {"wet", "dry"},   {"long", "short"},  {"loud", "quiet"}, {"light", "dark"}};
    for (std::size_t i = 0; i < std::size(pairs); ++i) {
      auto [a, b] = pairs[i];
      w.antonym[a] = b;
      w.antonym[b] = a;
      w.adjectives.push_back(a);
      w.adjectives.push_back(b);
      if (i < 6) {
        w.positive.push_back(a);
        w.negative.push_back(b);
      }
    }
    w.review_nouns = {"food", "film", "trip", "hotel", "show", "staff", "book", "game", "soup", "room"};
    w.numbers = {"zero",  "one",    "two",    "three",    "four",     "five",    "six",
                 "seven", "eight",  "nine",   "ten",      "eleven",   "twelve",  "thirteen",
                 "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"};
    // Zorbish: two CV syllables per word, fixed for every seed (the language is part of the
    // world, not of one draw of examples).
    std::set<std::string> taken;
    for (const auto& t : w.things()) taken.insert(t);
    Rng rng(0x20b15ull);
    const std::string consonants = "bdfgklmnprstvz", vowels = "aeiou";
    for (const auto& t : w.things()) {
      std::string z;
      do {
        z.clear();
        for (int s = 0; s < 2; ++s) {
          z += consonants[static_cast<std::size_t>(rng.below(static_cast<int>(consonants.size())))];
          z += vowels[static_cast<std::size_t>(rng.below(static_cast<int>(vowels.size())))];
        }
      } while (taken.count(z));
      taken.insert(z);
      w.zorbish[t] = z;
    }
    return w;
  }();
  return w;
}

namespace {

std::vector<std::string> map_words(const std::vector<std::string>& v, const std::map<std::string, std::string>& m) {
  std::vector<std::string> out;
  for (const auto& x : v) out.push_back(m.at(x));
  return out;
}
std::vector<std::string> map_plural(const std::vector<std::string>& v) {
  std::vector<std::string> out;
  for (const auto& x : v) out.push_back(plural(x));
  return out;
}
std::vector<std::string> reversed(std::vector<std::string> v) {
  std::reverse(v.begin(), v.end());
  return v;
}
std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}
// A permutation of v that differs from v and from `avoid` when one exists.
std::vector<std::string> other_order(Rng& rng, const std::vector<std::string>& v) {
  std::vector<std::string> p = v;
  for (int tries = 0; tries < 8; ++tries) {
    rng.shuffle(p);
    if (p != v && p != reversed(v) && p != sorted(v)) break;
  }
  return p;
}
const std::string& number(int n) { return world().numbers.at(static_cast<std::size_t>(n)); }
std::vector<std::string> numbers_near(int n, std::initializer_list<int> offsets) {
  std::vector<std::string> out;
  for (int d : offsets)
    if (n + d >= 0 && n + d <= 20) out.push_back(number(n + d));
  return out;
}

// As many words of `pool` as `like` has, none of them in `like` (when the pool allows).
// avoid_same_color: for fruits, also none with the color of the fruit at the same place.
std::vector<std::string> sample_other(Rng& rng, const std::vector<std::string>& pool, const std::vector<std::string>& like,
                                      bool avoid_same_color = false) {
  std::vector<std::string> rest;
  for (const auto& p : pool)
    if (std::find(like.begin(), like.end(), p) == like.end()) rest.push_back(p);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < like.size(); ++i) {
    std::string pick;
    for (int tries = 0; tries < 16; ++tries) {
      pick = rng.pick(rest);
      if (!avoid_same_color || world().fruit_color.at(pick) != world().fruit_color.at(like[i])) break;
    }
    out.push_back(pick);
  }
  return out;
}

// A review "the food was great and the staff were kind" of one polarity.
struct Review {
  std::string text;
  bool positive;
  std::vector<std::string> adjectives;
};
Review make_review(Rng& rng) {
  const World& w = world();
  Review r;
  r.positive = rng.below(2) == 0;
  int clauses = rng.between(1, 2);
  auto nouns = rng.sample(w.review_nouns, clauses);
  auto adjs = rng.sample(r.positive ? w.positive : w.negative, clauses);
  for (int i = 0; i < clauses; ++i) {
    if (i) r.text += " and ";
    r.text += "the " + nouns[static_cast<std::size_t>(i)] + " was " + adjs[static_cast<std::size_t>(i)];
  }
  r.adjectives = adjs;
  return r;
}

std::vector<std::string> words_of(Rng& rng, const std::vector<std::string>& pool, int lo, int hi) {
  return rng.sample(pool, rng.between(lo, hi));
}

Instance list_instance(const std::string& prefix, const std::vector<std::string>& list, std::string answer,
                       std::vector<std::string> distractors) {
  Instance in;
  in.fields["list"] = join(list);
  in.answer = std::move(answer);
  in.distractors = std::move(distractors);
  in.key = prefix + ":" + join(list);
  return in;
}

std::vector<TaskDef> build() {
  const World& w = world();
  std::vector<TaskDef> t;
  auto held_in = [&](std::string name, std::string description, std::vector<std::string> templates,
                     std::function<Instance(Rng&)> make, bool partition = true) {
    TaskDef d;
    d.info.name = name;
    d.info.skills = {name};
    d.info.templates = std::move(templates);
    d.info.description = std::move(description);
    d.make = std::move(make);
    d.partition = partition;
    t.push_back(std::move(d));
  };
  auto held_out = [&](std::string name, std::vector<std::string> composes, std::string description,
                      std::vector<std::string> templates, std::function<Instance(Rng&)> make) {
    TaskDef d;
    d.info.name = name;
    d.info.held_out = true;
    d.info.kind = "compose";
    d.info.benchmark = "compose";
    d.info.skills = composes;
    d.info.composes = std::move(composes);
    d.info.templates = std::move(templates);
    d.info.description = std::move(description);
    d.make = std::move(make);
    d.partition = false;
    t.push_back(std::move(d));
  };
  auto held_in_def = [&](const std::string& name) -> const TaskDef& {
    for (const auto& d : t)
      if (d.info.name == name && !d.info.held_out) return d;
    throw std::logic_error("synthetic suite: no held-in task " + name);
  };
  // A held-in skill under new wordings: the held-in task's instances (from its evaluation
  // bucket, never trained on) and answer choices, behind prompts no expert has seen.
  auto transfer = [&](const std::string& skill, std::string description, std::vector<std::string> templates) {
    TaskDef d;
    d.info.name = skill + "_reworded";
    d.info.held_out = true;
    d.info.kind = "transfer";
    d.info.benchmark = "heldout";
    d.info.skills = {skill};
    d.info.composes = {skill};
    d.info.templates = std::move(templates);
    d.info.description = std::move(description);
    d.make = held_in_def(skill).make;
    t.push_back(std::move(d));
  };
  // Two segments, each a held-in instance of a different skill (both from the held-in
  // evaluation buckets), answered side by side. The wrong choices apply the right skill to
  // other words in one segment or both, so one skill alone earns about half the credit
  // and neither skill alone is the copy of the input.
  auto mixed = [&](const std::string& first, const std::string& second, std::string description,
                   std::vector<std::string> templates) {
    TaskDef d;
    d.info.name = first + "_" + second;
    d.info.held_out = true;
    d.info.kind = "mixed";
    d.info.benchmark = "heldout";
    d.info.skills = {first, second};
    d.info.composes = {first, second};
    d.info.templates = std::move(templates);
    d.info.description = std::move(description);
    auto make_first = held_in_def(first).make, make_second = held_in_def(second).make;
    d.make = [make_first, make_second](Rng& r) {
      auto draw = [&r](const std::function<Instance(Rng&)>& make) {
        Instance in;
        do in = make(r);
        while (!in_split(in.key, "eval"));
        return in;
      };
      auto other = [&draw](const std::function<Instance(Rng&)>& make, const Instance& like) {
        Instance o;
        for (int tries = 0; tries < 64; ++tries) {
          o = draw(make);
          if (o.answer != like.answer) break;
        }
        return o.answer;
      };
      Instance a = draw(make_first), b = draw(make_second);
      std::string a_wrong = other(make_first, a), b_wrong = other(make_second, b);
      Instance in;
      in.fields = {{"list1", a.fields.at("list")}, {"list2", b.fields.at("list")}};
      in.answer = a.answer + " " + b.answer;
      in.distractors = {a.answer + " " + b_wrong, a_wrong + " " + b.answer, a_wrong + " " + b_wrong};
      in.key = a.key + "|" + b.key;
      return in;
    };
    d.partition = false;  // both segments are drawn from evaluation buckets above
    t.push_back(std::move(d));
  };

  // ---------------- held-in: one skill each ----------------
  held_in("reverse", "write a list of 2-5 words in reverse order",
          {"Reverse the list: {list}", "{list}\nWrite these words in reverse order.", "Read the words backwards: {list}"},
          [&](Rng& r) {
            auto l = words_of(r, w.things(), 2, 5);
            return list_instance("reverse", l, join(reversed(l)), {join(l), join(sorted(l)), join(other_order(r, l))});
          });
  held_in("sort", "sort a list of 2-5 words alphabetically",
          {"Sort alphabetically: {list}", "{list}\nPut these words in alphabetical order.", "Arrange from A to Z: {list}"},
          [&](Rng& r) {
            auto l = words_of(r, w.things(), 2, 5);
            return list_instance("sort", l, join(sorted(l)),
                                 {join(l), join(reversed(sorted(l))), join(other_order(r, l))});
          });
  held_in("translate", "translate 1-4 words into Zorbish, word by word",
          {"Translate to Zorbish: {list}", "{list}\nSay these words in Zorbish.", "What is {list} in Zorbish?"},
          [&](Rng& r) {
            auto l = words_of(r, w.things(), 1, 4);
            auto z = map_words(l, w.zorbish);
            std::vector<std::string> partial = z;
            partial[0] = l[0];
            return list_instance("translate", l, join(z),
                                 {join(l), join(partial), join(map_words(sample_other(r, w.things(), l), w.zorbish)),
                                  join(reversed(z))});
          });
  held_in("plural", "write the plural of 1-4 nouns",
          {"Make plural: {list}", "{list}\nWrite the plural of each word.", "More than one: {list}"},
          [&](Rng& r) {
            auto l = words_of(r, w.nouns(), 1, 4);
            std::vector<std::string> naive;
            for (const auto& x : l) naive.push_back(x + "s");
            return list_instance("plural", l, join(map_plural(l)),
                                 {join(l), join(naive), join(map_plural(sample_other(r, w.nouns(), l))),
                                  join(reversed(map_plural(l)))});
          });
  held_in("count", "count the words of a list of 1-9 words",
          {"How many words? {list}", "{list}\nCount the words.", "Number of items in: {list}"},
          [&](Rng& r) {
            auto l = words_of(r, w.things(), 1, 9);
            int n = static_cast<int>(l.size());
            return list_instance("count", l, number(n), numbers_near(n, {1, -1, 2, -2}));
          });
  held_in("add", "add two numbers from zero to nine, in words",
          {"What is {a} plus {b}?", "Add {a} and {b}.", "{a} + {b} ="},
          [&](Rng& r) {
            int a = r.between(0, 9), b = r.between(0, 9);
            Instance in;
            in.fields = {{"a", number(a)}, {"b", number(b)}};
            in.answer = number(a + b);
            in.distractors = numbers_near(a + b, {1, -1, 2, -2});
            in.key = "add:" + number(a) + ":" + number(b);
            return in;
          },
          /*partition=*/false);
  held_in("category", "name the category (animal, fruit, color, tool) of each of 1-4 words",
          {"What kind of thing is each word? {list}", "{list}\nName the category of each word.",
           "Animal, fruit, color or tool: {list}"},
          [&](Rng& r) {
            auto l = words_of(r, w.things(), 1, 4);
            auto cats = map_words(l, w.category_of);
            auto wrong = [&] {
              std::vector<std::string> v;
              for (const auto& c : cats) {
                std::string o;
                do o = r.pick(w.categories);
                while (o == c);
                v.push_back(o);
              }
              return v;
            };
            return list_instance("category", l, join(cats), {join(wrong()), join(reversed(cats)), join(wrong())});
          });
  held_in("filter", "keep only the words of one category from a mixed list of 3-6 words",
          {"Keep only the {c}s: {list}", "{list}\nWhich of these are {c}s?", "List the {c}s in: {list}"},
          [&](Rng& r) {
            std::string c = r.pick(w.categories);
            std::vector<std::string> l, in_c, others;
            do {
              l = words_of(r, w.things(), 3, 6);
              in_c.clear();
              others.clear();
              for (const auto& x : l) (w.category_of.at(x) == c ? in_c : others).push_back(x);
            } while (in_c.empty() || others.empty());
            Instance in = list_instance("filter:" + c, l, join(in_c), {join(others), join(l), join(reversed(in_c))});
            in.fields["c"] = c;
            return in;
          });
  held_in("antonym", "give the opposite of each of 1-4 adjectives",
          {"Opposites of: {list}", "{list}\nGive the opposite of each word.", "What are the antonyms of {list}?"},
          [&](Rng& r) {
            auto l = words_of(r, w.adjectives, 1, 4);
            auto a = map_words(l, w.antonym);
            std::vector<std::string> partial = a;
            partial[0] = l[0];
            return list_instance("antonym", l, join(a),
                                 {join(l), join(partial), join(map_words(sample_other(r, w.adjectives, l), w.antonym)),
                                  join(reversed(a))});
          });
  held_in("sentiment", "say whether a one- or two-clause review is positive or negative",
          {"Review: {review}\nIs this review positive or negative?", "{review}\nPositive or negative?",
           "How does the reviewer feel, positive or negative? {review}"},
          [&](Rng& r) {
            Review rv = make_review(r);
            Instance in;
            in.fields = {{"review", rv.text}};
            in.answer = rv.positive ? "positive" : "negative";
            in.distractors = {rv.positive ? "negative" : "positive"};
            in.key = "sentiment:" + rv.text;
            return in;
          });
  held_in("color", "name the color of each of 1-3 fruits (world knowledge)",
          {"What color is each fruit? {list}", "{list}\nName the color of each fruit.", "Colors of: {list}"},
          [&](Rng& r) {
            auto l = words_of(r, w.fruits, 1, 3);
            auto c = map_words(l, w.fruit_color);
            return list_instance("color", l, join(c),
                                 {join(map_words(sample_other(r, w.fruits, l, /*avoid_same_color=*/true), w.fruit_color)),
                                  join(l), join(sample_other(r, w.colors, c))});
          });
  held_in("next", "give the number after each of 1-3 numbers from zero to nineteen",
          {"What comes after each number? {list}", "{list}\nAdd one to each number.", "Next numbers: {list}"},
          [&](Rng& r) {
            std::vector<int> idx;
            for (int i = 0; i < 20; ++i) idx.push_back(i);
            idx = r.sample(idx, r.between(1, 3));
            std::vector<std::string> l, plus1, plus2, minus1;
            for (int i : idx) {
              l.push_back(number(i));
              plus1.push_back(number(i + 1));
              plus2.push_back(number(std::min(i + 2, 20)));
              minus1.push_back(number(std::max(i - 1, 0)));
            }
            return list_instance("next", l, join(plus1), {join(l), join(plus2), join(minus1)});
          });

  // ---------------- held-out (transfer): a held-in skill under new wordings ----------------
  transfer("reverse", "reverse a list of 2-5 words, asked in new words",
           {"Flip the order of these words: {list}", "{list}\nStart from the last word and go to the first.",
            "Last word first, please: {list}"});
  transfer("sort", "sort 2-5 words alphabetically, asked in new words",
           {"Put in dictionary order: {list}", "{list}\nOrder these words as a dictionary would.", "Alphabetize: {list}"});
  transfer("translate", "translate 1-4 words into Zorbish, asked in new words",
           {"Give the Zorbish words for: {list}", "How would a Zorbish speaker say {list}?",
            "{list}\nNow in the Zorbish tongue."});
  transfer("plural", "the plurals of 1-4 nouns, asked in new words",
           {"Two or more of each: {list}", "{list}\nWhat do you call several of each?", "Plural forms, please: {list}"});
  transfer("category", "the category of each of 1-4 words, asked in new words",
           {"Which group is each word in (animal, fruit, color, tool)? {list}", "{list}\nWhich group does each word belong to?",
            "Group of each word: {list}"});
  transfer("antonym", "the opposites of 1-4 adjectives, asked in new words",
           {"Swap each word for its opposite: {list}", "{list}\nWhat word means the opposite of each?",
            "Contrary of each: {list}"});
  transfer("sentiment", "the polarity of a review, asked in new words",
           {"{review}\nDid the writer like it, positive or negative?", "Was this a positive or a negative opinion? {review}",
            "Opinion: {review} Positive or negative?"});
  transfer("color", "the color of each of 1-3 fruits, asked in new words",
           {"Which color does each fruit have? {list}", "{list}\nTell me the shade of each fruit.", "Fruit colors: {list}"});
  transfer("next", "the number after each of 1-3 numbers, asked in new words",
           {"Count up by one from each: {list}", "{list}\nWhat follows each number?", "One higher than each: {list}"});

  // ---------------- held-out (mixed): two segments, two skills ----------------
  mixed("plural", "antonym", "the plurals of the first list, then the opposites of the second",
        {"Make plural: {list1}. Opposites of: {list2}", "{list1}\nWrite the plural of each word.\n{list2}\nGive the opposite of each word.",
         "More than one: {list1} and the antonyms of {list2}"});
  mixed("color", "next", "the colors of the fruits, then the numbers after the numbers",
        {"What color is each fruit? {list1}. Next numbers: {list2}", "{list1}\nName the color of each fruit.\n{list2}\nAdd one to each number.",
         "Colors of: {list1} and what comes after each number: {list2}"});
  mixed("translate", "next", "the first list in Zorbish, then the numbers after the numbers",
        {"Translate to Zorbish: {list1}. Next numbers: {list2}", "{list1}\nSay these words in Zorbish.\n{list2}\nAdd one to each number.",
         "What is {list1} in Zorbish, and what comes after each of {list2}?"});
  mixed("antonym", "color", "the opposites of the adjectives, then the colors of the fruits",
        {"Opposites of: {list1}. Colors of: {list2}", "{list1}\nGive the opposite of each word.\n{list2}\nName the color of each fruit.",
         "What are the antonyms of {list1}, and the colors of {list2}?"});

  // ---------------- held-out (compose): two skills of different held-in tasks each ----------------
  held_out("reverse_translate", {"translate", "reverse"}, "translate 2-4 words into Zorbish and write them in reverse order",
           {"Translate to Zorbish in reverse order: {list}", "{list}\nSay these words in Zorbish, backwards.",
            "Read the words backwards in Zorbish: {list}"},
           [&](Rng& r) {
             auto l = words_of(r, w.things(), 2, 4);
             auto z = map_words(l, w.zorbish);
             return list_instance("reverse_translate", l, join(reversed(z)), {join(z), join(reversed(l)), join(l)});
           });
  held_out("sort_plural", {"sort", "plural"}, "sort 2-4 nouns alphabetically and write their plurals",
           {"Sort alphabetically and make plural: {list}", "{list}\nWrite the plural of each word in alphabetical order.",
            "Arrange from A to Z, more than one: {list}"},
           [&](Rng& r) {
             std::vector<std::string> l;
             do l = words_of(r, w.nouns(), 2, 4);
             while (l == sorted(l));
             return list_instance("sort_plural", l, join(map_plural(sorted(l))),
                                  {join(map_plural(l)), join(sorted(l)), join(l)});
           });
  held_out("count_filter", {"filter", "count"}, "count the words of one category in a mixed list of 3-7 words",
           {"How many {c}s? {list}", "{list}\nCount the {c}s.", "Number of {c}s in: {list}"},
           [&](Rng& r) {
             std::string c = r.pick(w.categories);
             std::vector<std::string> l, in_c;
             do {
               l = words_of(r, w.things(), 3, 7);
               in_c.clear();
               for (const auto& x : l)
                 if (w.category_of.at(x) == c) in_c.push_back(x);
             } while (in_c.empty() || in_c.size() == l.size());
             int k = static_cast<int>(in_c.size());
             Instance in = list_instance("count_filter:" + c, l, number(k),
                                         {number(static_cast<int>(l.size())), join(in_c), number(k + 1)});
             in.fields["c"] = c;
             return in;
           });
  held_out("count_add", {"count", "add"}, "count the words of a list of 1-6 words and add a number from one to four",
           {"Count the words and add {k}: {list}", "{list}\nHow many words, plus {k}?",
            "What is the number of words plus {k}? {list}"},
           [&](Rng& r) {
             auto l = words_of(r, w.things(), 1, 6);
             int n = static_cast<int>(l.size()), k = r.between(1, 4);
             Instance in = list_instance("count_add:" + number(k), l, number(n + k), {number(n), number(k), number(n + k + 1)});
             in.fields["k"] = number(k);
             return in;
           });
  held_out("color_translate", {"color", "translate"}, "name the color of each of 1-3 fruits in Zorbish",
           {"What color is each fruit, in Zorbish? {list}", "{list}\nName the color of each fruit in Zorbish.",
            "Colors of, in Zorbish: {list}"},
           [&](Rng& r) {
             auto l = words_of(r, w.fruits, 1, 3);
             auto c = map_words(l, w.fruit_color);
             return list_instance("color_translate", l, join(map_words(c, w.zorbish)),
                                  {join(c), join(map_words(l, w.zorbish)),
                                   join(map_words(sample_other(r, w.colors, c), w.zorbish))});
           });
  held_out("negated_sentiment", {"antonym", "sentiment"},
           "judge the sentiment of a review after replacing every adjective by its opposite",
           {"Review: {review}\nReplace each adjective with its opposite. Is the new review positive or negative?",
            "{review}\nIf every adjective meant the opposite, would the review be positive or negative?",
            "Opposite review: {review} Positive or negative?"},
           [&](Rng& r) {
             Review rv = make_review(r);
             Instance in;
             in.fields = {{"review", rv.text}};
             in.answer = rv.positive ? "negative" : "positive";
             in.distractors = {rv.positive ? "positive" : "negative"};
             in.key = "negated_sentiment:" + rv.text;
             return in;
           });
  held_out("count_next", {"count", "next"}, "give the number after the number of words in a list of 1-8 words",
           {"Count the words, then give the next number: {list}", "{list}\nWhat number comes after the number of words?",
            "One more than the number of words in: {list}"},
           [&](Rng& r) {
             auto l = words_of(r, w.things(), 1, 8);
             int n = static_cast<int>(l.size());
             return list_instance("count_next", l, number(n + 1), {number(n), number(n + 2), number(std::max(n - 1, 0))});
           });
  held_out("antonym_reverse", {"antonym", "reverse"}, "give the opposites of 2-4 adjectives in reverse order",
           {"Opposites in reverse order: {list}", "{list}\nGive the opposite of each word, backwards.",
            "Read the antonyms backwards: {list}"},
           [&](Rng& r) {
             auto l = words_of(r, w.adjectives, 2, 4);
             auto a = map_words(l, w.antonym);
             return list_instance("antonym_reverse", l, join(reversed(a)), {join(a), join(reversed(l)), join(l)});
           });
  return t;
}

}  // namespace

const std::vector<TaskDef>& task_defs() {
  static const std::vector<TaskDef> defs = build();
  return defs;
}

}  // namespace gaggle::tasks::detail
