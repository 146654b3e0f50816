// libFuzzer target: the parsers of the text a hub serves beside the tensors (bundle
// manifests, SSHSIG signatures, allowed-signers files, OpenSSH public keys) must reject any
// input with an Error, never crash, hang, read out of bounds or let another exception out.
// The first byte picks the parser. Run with fuzz/run.sh bundle_text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bundle/allowed_signers.h"
#include "bundle/keys.h"
#include "bundle/manifest.h"
#include "bundle/sshsig.h"
#include "io/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    switch (data[0] % 4) {
      case 0: gaggle::bundle::parse_manifest(text, "fuzz"); break;
      case 1: gaggle::bundle::parse_sshsig(text, "fuzz"); break;
      case 2: gaggle::bundle::parse_allowed_signers(text, "fuzz"); break;
      default: gaggle::bundle::parse_public_key(text, "fuzz"); break;
    }
  } catch (const gaggle::Error&) {
  }
  return 0;
}
