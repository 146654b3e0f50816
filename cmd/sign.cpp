// gaggle sign — sign an expert bundle: manifest.json.sig, an SSHSIG signature over
// manifest.json with namespace gaggle-bundle (lib/bundle/sign.h). --format model-signing
// writes an OpenSSF model_signing signature instead (lib/bundle/model_signing.h).
#include <iostream>

#include "bundle/manifest.h"
#include "bundle/model_signing.h"
#include "bundle/sign.h"
#include "io/error.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

struct SignCliOptions {
  std::string bundle;
  std::string key;
  std::string format = "sshsig";
  std::string output;
};

}  // namespace

Runner setup_sign(CLI::App& sub) {
  auto opt = std::make_shared<SignCliOptions>();
  sub.add_option("bundle", opt->bundle, "The bundle directory (holds manifest.json)")->required();
  sub.add_option("--key", opt->key,
                 "Signing key: an OpenSSH ed25519 private key (default ~/.ssh/id_ed25519); with ssh-agent "
                 "(SSH_AUTH_SOCK) also its .pub or an encrypted key the agent holds. For --format model-signing: "
                 "an EC private key in PEM");
  sub.add_option("--format", opt->format, "sshsig (default: manifest.json.sig) or model-signing (OpenSSF model_signing v1.0)")
      ->check(CLI::IsMember({"sshsig", "model-signing"}));
  sub.add_option("--output", opt->output, "model-signing only: where to write the signature (default BUNDLE/model.sig)");
  set_example(sub,
              "  gaggle sign experts/sst2 --key ~/.ssh/id_ed25519\n"
              "  gaggle sign experts/sst2 --key ~/.ssh/id_ed25519.pub     # through ssh-agent\n"
              "  gaggle sign model/ --format model-signing --key ec-key.pem");
  return [opt]() -> int {
    if (opt->format == "model-signing") {
      if (opt->key.empty())
        throw Error(ErrorCode::usage, "cli", "--format model-signing needs --key EC_PRIVATE_KEY.pem");
      bundle::ModelSigningSignOptions o;
      o.private_key = opt->key;
      std::filesystem::path model(opt->bundle);
      o.signature = !opt->output.empty()              ? std::filesystem::path(opt->output)
                    : std::filesystem::is_directory(model) ? model / "model.sig"
                                                           : model.parent_path() / "model.sig";
      auto r = bundle::sign_model_signing(opt->bundle, o);
      std::cout << "signed: " << r.files.size() << " files of " << opt->bundle << " -> " << o.signature.string() << "\n";
      return kExitSuccess;
    }
    if (!opt->output.empty()) throw Error(ErrorCode::usage, "cli", "--output is for --format model-signing only");
    bundle::SignOptions o;
    o.key = opt->key;
    bundle::Manifest m = bundle::read_manifest(opt->bundle);
    std::string fingerprint = bundle::sign_bundle(opt->bundle, o);
    std::cout << "signed: " << m.name << "@" << m.version << " with " << fingerprint << " -> "
              << (std::filesystem::path(opt->bundle) / bundle::kSignatureFile).string() << "\n";
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
