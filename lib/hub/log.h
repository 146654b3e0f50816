#pragma once
// The history of one expert on a hub (issue #16: `gaggle log NAME --hub URL`): every
// published version with its verified signer, when it was published, and what changed
// against the version before it, tensor by tensor (bundle/diff.h). The versions are
// pulled and verified into a scratch pool first, so a signer shown is a trusted one;
// a version that does not verify is listed with the reason and nothing else.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "bundle/diff.h"

namespace gaggle::hub {

struct LogOptions {
  std::string hub;
  std::string name;
  std::filesystem::path trust_file;
  std::filesystem::path ca_file;
  std::filesystem::path ssh_known_hosts;
};

struct VersionLog {
  std::string version;
  bool verified = false;
  std::string reason;  // why it did not verify
  std::string principal, key_fingerprint;
  std::string commit;  // the hub commit that published it ("" for a static index)
  std::int64_t time = 0;  // its commit time (unix seconds; 0 when unknown)
  bool first = true;      // no earlier verified version to compare with
  bundle::BundleDiff changes;  // against the previous verified version
};

// Versions in publication order (commit time; then semver for ties and static indexes).
// Throws Error{not_found} when the hub has no version of `name`.
std::vector<VersionLog> expert_log(const LogOptions& options);

}  // namespace gaggle::hub
