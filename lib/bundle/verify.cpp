#include "bundle/verify.h"

#include <ctime>

#include "bundle/allowed_signers.h"
#include "bundle/contents.h"
#include "bundle/sshsig.h"
#include "io/atomic_file.h"
#include "io/error.h"

namespace fs = std::filesystem;

namespace gaggle::bundle {
namespace {

// Reads a regular file no larger than `limit`; never follows a symlink.
std::string read_limited(const fs::path& path, std::size_t limit, const char* what, const std::string& hint) {
  std::error_code ec;
  auto st = fs::symlink_status(path, ec);
  if (ec || !fs::exists(st)) throw_error(ErrorCode::not_found, "bundle", "'" + path.string() + "' does not exist", hint);
  if (!fs::is_regular_file(st)) throw_error(ErrorCode::invalid, "bundle", "'" + path.string() + "' is not a regular file");
  auto size = fs::file_size(path, ec);
  if (!ec && size > limit)
    throw_error(ErrorCode::invalid, "bundle",
                path.string() + ": " + what + " is " + std::to_string(size) + " bytes; the limit is " + std::to_string(limit));
  return io::read_file(path);
}

}  // namespace

VerifyResult verify_bundle(const fs::path& bundle_dir, const VerifyOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(bundle_dir, ec))
    throw_error(ErrorCode::not_found, "bundle", "bundle directory '" + bundle_dir.string() + "' does not exist");
  if (options.trust_file.empty())
    throw_error(ErrorCode::usage, "bundle", "no trust file given", "pass --trust ALLOWED_SIGNERS (OpenSSH allowed-signers format)");
  std::string bytes = read_limited(bundle_dir / kManifestFile, kManifestMaxBytes, "the manifest",
                                   "is '" + bundle_dir.string() + "' an expert bundle? It needs a manifest.json");
  fs::path sig_path = bundle_dir / kSignatureFile;
  std::string sig_text = read_limited(sig_path, kSignatureMaxBytes, "the signature",
                                      "the bundle is not signed; its author signs it with: gaggle sign BUNDLE --key KEY");

  SshSignature sig = parse_sshsig(sig_text, sig_path.string());
  verify_sshsig(sig, bytes, kBundleNamespace, sig_path.string());

  auto signers = read_allowed_signers(options.trust_file);
  std::int64_t now = options.now ? options.now : static_cast<std::int64_t>(std::time(nullptr));
  const AllowedSigner& signer = find_trusted_signer(signers, sig.key, kBundleNamespace, now, options.trust_file.string(),
                                                      options.principal);

  Manifest m = parse_manifest(bytes, (bundle_dir / kManifestFile).string());
  check_bundle_files(bundle_dir, m, options.allow_remote_files);

  VerifyResult r;
  r.name = m.name;
  r.version = m.version;
  r.principal = options.principal.empty() ? signer.principal_text() : options.principal;
  r.key_fingerprint = sig.key.fingerprint();
  r.manifest = std::move(m);
  return r;
}

}  // namespace gaggle::bundle
