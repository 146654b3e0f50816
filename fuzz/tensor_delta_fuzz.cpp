// libFuzzer target: a sparse tensor delta (bundle/tensor_delta.h) comes from a hub, so
// applying any bytes as a delta must end in an Error or in a result of the base's size,
// never a crash, hang or out-of-bounds access. The first input byte picks the base's
// size; the rest is the delta. Run with fuzz/run.sh tensor_delta.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bundle/tensor_delta.h"
#include "io/error.h"
#include "io/sha256.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string base(static_cast<std::size_t>(data[0]) * 4, '\x11');
  const std::string_view delta(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const std::string out = gaggle::bundle::apply_sparse_delta(delta, base, "fuzz");
    if (out.size() != base.size()) __builtin_trap();
  } catch (const gaggle::Error&) {
  }
  // A delta made against this base always applies back exactly.
  if (size > 1) {
    std::string target = base;
    for (std::size_t i = 1; i < size && i - 1 < target.size(); ++i) target[i - 1] = static_cast<char>(data[i]);
    const std::string sha = gaggle::io::sha256_hex(base);
    if (auto d = gaggle::bundle::encode_sparse_delta(base, sha, target, 4, 1 << 20))
      if (gaggle::bundle::apply_sparse_delta(*d, base, "fuzz") != target) __builtin_trap();
  }
  return 0;
}
