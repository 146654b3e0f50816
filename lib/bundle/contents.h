#pragma once
// The file check shared by sign and verify: the bundle directory holds exactly the
// files its manifest lists, each with its size and sha256, and nothing that could lead
// outside it (symlinks, special files).
#include <filesystem>

#include "bundle/manifest.h"

namespace gaggle::bundle {

// Throws, naming the first problem in a stable order (the directory's entries sorted
// by path, then the manifest's entries in order):
//   Error{invalid}   a symlink or special file in the bundle;
//   Error{mismatch}  a file not listed in the manifest, or a wrong size or sha256;
//   Error{not_found} a listed file that is absent (unless allow_remote_files and it
//                    has a url).
// `dir` without a trailing separator or '.' components (so relative paths come out clean).
std::filesystem::path normalized_dir(const std::filesystem::path& dir);

void check_bundle_files(const std::filesystem::path& bundle_dir, const Manifest& m, bool allow_remote_files);

}  // namespace gaggle::bundle
