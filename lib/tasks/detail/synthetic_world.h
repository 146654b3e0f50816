#pragma once
// The little world the synthetic suite talks about: its words, facts and the invented
// language Zorbish, a deterministic PRNG, and the task definitions (synthetic_tasks.cpp).
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tasks/synthetic.h"

namespace gaggle::tasks::detail {

// splitmix64: the same numbers on every platform (std distributions are not portable).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int below(int n) { return static_cast<int>(next() % static_cast<std::uint64_t>(n)); }
  int between(int lo, int hi) { return lo + below(hi - lo + 1); }  // inclusive
  template <typename T>
  const T& pick(const std::vector<T>& v) { return v[static_cast<std::size_t>(below(static_cast<int>(v.size())))]; }
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<std::size_t>(below(static_cast<int>(i)))]);
  }
  // k distinct elements of v, in random order.
  template <typename T>
  std::vector<T> sample(const std::vector<T>& v, int k) {
    std::vector<T> copy = v;
    shuffle(copy);
    copy.resize(static_cast<std::size_t>(k));
    return copy;
  }

 private:
  std::uint64_t state_;
};

std::uint64_t fnv1a64(const std::string& s);

// Which key-hash bucket (of 10) a split draws from: "eval" 0, "validation" 1, "train" 2-9.
bool in_split(const std::string& key, const std::string& split);

// ---- the world ----
struct World {
  std::vector<std::string> animals, fruits, colors, tools;
  std::vector<std::string> categories;                 // animal, fruit, color, tool
  std::map<std::string, std::string> category_of;      // word -> category
  std::map<std::string, std::string> zorbish;          // English -> Zorbish
  std::map<std::string, std::string> fruit_color;      // fruit -> color
  std::vector<std::string> adjectives;                 // every adjective with an antonym
  std::map<std::string, std::string> antonym;          // both directions
  std::vector<std::string> positive, negative;         // sentiment adjectives (antonym pairs)
  std::vector<std::string> review_nouns;
  std::vector<std::string> numbers;                    // zero .. twenty
  std::vector<std::string> nouns() const;              // animals, fruits, tools (have plurals)
  std::vector<std::string> things() const;             // nouns and colors
};
const World& world();
std::string plural(const std::string& noun);
std::string join(const std::vector<std::string>& words, const std::string& sep = " ");

// ---- tasks ----
using Fields = std::map<std::string, std::string>;

struct Instance {
  Fields fields;                        // filled into the template
  std::string answer;
  std::vector<std::string> distractors; // wrong answers (duplicates and the answer are dropped)
  std::string key;                      // identity of the instance (for the train/eval split)
};

struct TaskDef {
  SuiteTaskInfo info;
  std::function<Instance(Rng&)> make;
  // Large instance spaces are partitioned by key hash so that evaluation instances never
  // occur in training; small fact tables (add) are not.
  bool partition = true;
};

const std::vector<TaskDef>& task_defs();

}  // namespace gaggle::tasks::detail
