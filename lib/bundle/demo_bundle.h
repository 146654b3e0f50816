#pragma once
// A small valid, unsigned bundle for tests and demos (gaggle debug make-bundle): random
// LoRA factors and gates for a made-up tiny base, and a manifest listing them.
#include <cstdint>
#include <filesystem>
#include <string>

#include "bundle/manifest.h"

namespace gaggle::bundle {

struct DemoBundleOptions {
  std::string name = "demo";
  std::string version = "0.1.0";
  std::uint64_t seed = 0;  // random tensors are a function of the seed
  int rank = 4;
  int d_model = 32;
};

// Creates `out` (it must not exist; Error{exists}) atomically and returns its manifest.
Manifest make_demo_bundle(const std::filesystem::path& out, const DemoBundleOptions& options);

// The made-up base the demo bundles claim: "sha256:" + sha256 of its description.
std::string demo_base_fingerprint(int d_model);

}  // namespace gaggle::bundle
