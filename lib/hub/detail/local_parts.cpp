#include "hub/detail/local_parts.h"

#include <fstream>

#include "bundle/manifest.h"
#include "io/error.h"
#include "io/sha256.h"

namespace fs = std::filesystem;

namespace gaggle::hub::detail {

void LocalParts::load() {
  loaded_ = true;
  for (const auto& b : pool_.bundles) add_bundle(pool_dir_ / b.path);
}

void LocalParts::add_bundle(const fs::path& bundle_dir) {
  bundle::Manifest m;
  try {
    m = bundle::read_manifest(bundle_dir);
  } catch (const Error&) {
    return;  // a damaged bundle is no source; the pull goes on without it
  }
  for (const auto& f : m.files) {
    if (!f.tensors) continue;
    const fs::path file = bundle_dir / f.path;
    for (const auto& span : bundle::part_spans(*f.tensors))
      parts_.try_emplace(span.sha256, Location{file, span.offset, span.size});
  }
}

std::optional<std::string> LocalParts::read(const std::string& sha256, std::uint64_t size) {
  if (!loaded_) load();
  auto it = parts_.find(sha256);
  if (it == parts_.end() || it->second.size != size) return std::nullopt;
  std::ifstream in(it->second.file, std::ios::binary);
  if (!in) return std::nullopt;
  in.seekg(static_cast<std::streamoff>(it->second.offset));
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (!in || static_cast<std::uint64_t>(in.gcount()) != size) return std::nullopt;
  if (io::sha256_hex(bytes) != sha256) return std::nullopt;  // a damaged file: download instead
  return bytes;
}

}  // namespace gaggle::hub::detail
