// libFuzzer target: the safetensors header parser must reject any input with an
// Error, never crash, hang or read out of bounds. Run with fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto header = gaggle::io::SafetensorsHeader::parse(
        std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size), "fuzz");
    // Touch every accepted range, so ASan sees any out-of-bounds view.
    volatile std::uint8_t sink = 0;
    for (const auto& t : header.tensors)
      if (t.nbytes()) sink = static_cast<std::uint8_t>(sink ^ data[header.data_start + t.end - 1]);
  } catch (const gaggle::Error&) {
  }
  return 0;
}
