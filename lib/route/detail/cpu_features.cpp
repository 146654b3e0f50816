#include "route/detail/cpu_features.h"

namespace gaggle::route::detail {
namespace {

// __builtin_cpu_supports needs __builtin_cpu_init first when it runs before libgcc's own
// constructors (a namespace-scope initialiser may), so each answer is computed on first use.
bool supports(bool fma) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && (!fma || __builtin_cpu_supports("fma"));
}

}  // namespace

bool cpu_has_avx2() {
  static const bool yes = supports(false);
  return yes;
}

bool cpu_has_avx2_fma() {
  static const bool yes = supports(true);
  return yes;
}

bool cpu_has_avx512f() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return yes;
}

}  // namespace gaggle::route::detail
