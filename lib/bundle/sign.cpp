#include "bundle/sign.h"

#include <cstdlib>

#include "bundle/contents.h"
#include "bundle/keys.h"
#include "bundle/manifest.h"
#include "bundle/ssh_agent.h"
#include "bundle/sshsig.h"
#include "io/atomic_file.h"
#include "io/error.h"

namespace fs = std::filesystem;

namespace gaggle::bundle {

fs::path default_signing_key() {
  const char* home = std::getenv("HOME");
  return fs::path(home ? home : ".") / ".ssh" / "id_ed25519";
}

bool bundle_is_signed(const fs::path& bundle_dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::symlink_status(bundle_dir / kSignatureFile, ec));
}

std::string sign_bundle(const fs::path& bundle_dir, const SignOptions& options) {
  fs::path key_path = options.key.empty() ? default_signing_key() : options.key;
  fs::path manifest_path = bundle_dir / kManifestFile;
  Manifest m = read_manifest(bundle_dir);
  check_bundle_files(bundle_dir, m, /*allow_remote_files=*/true);
  std::string bytes = io::read_file(manifest_path);

  std::string key_text = io::read_file(key_path);
  std::string agent = agent_socket_from_env();
  PublicKey pub;
  SshSigner signer;
  if (looks_like_private_key(key_text)) {
    PrivateKeyFileInfo info = inspect_private_key(key_text, key_path.string());
    if (info.encrypted && !agent.empty()) {
      pub = info.pub;
      signer = [agent, pub](std::string_view data) { return agent_sign(agent, pub, data); };
    } else {
      auto priv = std::make_shared<PrivateKey>(parse_private_key(key_text, key_path.string()));
      pub = priv->pub;
      signer = [priv](std::string_view data) { return local_ed25519_signer_blob(*priv, data); };
    }
  } else {
    pub = parse_public_key(key_text, key_path.string());
    if (agent.empty())
      throw_error(ErrorCode::auth, "bundle",
                  "'" + key_path.string() + "' is a public key; signing with it needs ssh-agent, and SSH_AUTH_SOCK is not set",
                  "start an agent and load the private key: eval \"$(ssh-agent)\"; ssh-add PRIVATE_KEY; or pass the private key with --key");
    signer = [agent, pub](std::string_view data) { return agent_sign(agent, pub, data); };
  }
  if (pub.type != kEd25519)
    throw_error(ErrorCode::unsupported, "bundle", "'" + key_path.string() + "' is a '" + pub.type + "' key; gaggle signs with ssh-ed25519 only",
                "make an Ed25519 key: gaggle keygen -f KEY");
  std::string armoured = sign_sshsig(pub, signer, bytes, kBundleNamespace);
  // Never write a signature that does not verify (e.g. an agent answering with another key).
  verify_sshsig(parse_sshsig(armoured, "new signature"), bytes, kBundleNamespace, "new signature");
  io::write_file_atomic(bundle_dir / kSignatureFile, armoured);
  return pub.fingerprint();
}

}  // namespace gaggle::bundle
