#pragma once
// Progress of hub transfers, reported through a callback so that cmd/ decides between a
// bar, JSON lines and silence (lib/ never prints).
#include <cstdint>
#include <functional>
#include <string>

namespace gaggle::hub {

struct Progress {
  std::string phase;         // "fetch", "push", "upload", "download", "verify", "install"
  std::string item;          // what is being worked on: a URL, "sst2@1.0.0", ...
  std::uint64_t done = 0;    // bytes (or objects when unit == "objects")
  std::uint64_t total = 0;   // 0 when unknown
  std::string unit = "bytes";
};

using ProgressFn = std::function<void(const Progress&)>;

}  // namespace gaggle::hub
