// gaggle verify — check a bundle's signature, signer and files (lib/bundle/verify.h), or
// an OpenSSF model_signing signature over a model (lib/bundle/model_signing.h).
#include <iostream>

#include <nlohmann/json.hpp>

#include "bundle/model_signing.h"
#include "bundle/verify.h"
#include "io/error.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

struct VerifyCliOptions {
  std::vector<std::string> paths;
  std::string trust;
  std::int64_t now = 0;
  std::string principal;
  bool allow_remote = false;
  bool json = false;
  std::string model_signing;
  std::string public_key;
  std::vector<std::string> ignore_paths;
};

int verify_model_signing_cli(const VerifyCliOptions& opt) {
  if (opt.public_key.empty()) throw Error(ErrorCode::usage, "cli", "--model-signing needs --public-key KEY.pem");
  if (opt.paths.size() != 1) throw Error(ErrorCode::usage, "cli", "--model-signing verifies one model path at a time");
  bundle::ModelSigningVerifyOptions o;
  o.signature = opt.model_signing;
  o.public_key = opt.public_key;
  for (const auto& p : opt.ignore_paths) o.ignore_paths.emplace_back(p);
  auto r = bundle::verify_model_signing(opt.paths[0], o);
  if (opt.json) {
    nlohmann::ordered_json out = {{"path", opt.paths[0]}, {"format", "model-signing"}, {"subject", r.subject_name},
                                  {"key_fingerprint", r.key_fingerprint}, {"files", r.files.size()}};
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << "verified: " << r.subject_name << " (" << r.files.size() << " files, model_signing v1.0) signed by "
              << r.key_fingerprint << "\n";
  }
  return kExitSuccess;
}

}  // namespace

Runner setup_verify(CLI::App& sub) {
  auto opt = std::make_shared<VerifyCliOptions>();
  sub.add_option("bundle", opt->paths, "Bundle directories (or, with --model-signing, a model file or directory)")->required();
  sub.add_option("--trust", opt->trust, "Allowed-signers file (OpenSSH format) of the keys you trust");
  sub.add_option("-I,--principal", opt->principal, "Require this signer identity (as ssh-keygen -Y verify -I)");
  sub.add_option("--now", opt->now, "Check validity windows at this unix time instead of now");
  sub.add_flag("--allow-remote-files", opt->allow_remote, "Files the manifest stores at a URL may be absent");
  sub.add_flag("--json", opt->json, "Print JSON for scripts");
  sub.add_option("--model-signing", opt->model_signing, "Verify an OpenSSF model_signing signature (model.sig) instead");
  sub.add_option("--public-key", opt->public_key, "With --model-signing: the signer's EC public key (PEM)");
  sub.add_option("--ignore-paths", opt->ignore_paths, "With --model-signing: paths that are not part of the model");
  set_example(sub,
              "  gaggle verify experts/sst2 --trust allowed_signers\n"
              "  gaggle verify model/ --model-signing model/model.sig --public-key signer.pem");
  return [opt]() -> int {
    if (!opt->model_signing.empty()) return verify_model_signing_cli(*opt);
    if (!opt->public_key.empty() || !opt->ignore_paths.empty())
      throw Error(ErrorCode::usage, "cli", "--public-key and --ignore-paths go with --model-signing");
    if (opt->trust.empty())
      throw Error(ErrorCode::usage, "cli", "verify needs --trust ALLOWED_SIGNERS",
                  "the allowed-signers file lists the keys you trust (OpenSSH format, the one git uses)");
    bundle::VerifyOptions o;
    o.trust_file = opt->trust;
    o.now = opt->now;
    o.allow_remote_files = opt->allow_remote;
    o.principal = opt->principal;
    nlohmann::ordered_json results = nlohmann::ordered_json::array();
    for (const auto& path : opt->paths) {
      bundle::VerifyResult r;
      try {
        r = bundle::verify_bundle(path, o);
      } catch (const Error& e) {
        throw e.with_context("verify '" + path + "'");
      }
      if (opt->json) {
        results.push_back({{"path", path}, {"name", r.name}, {"version", r.version}, {"principal", r.principal},
                           {"key_fingerprint", r.key_fingerprint}, {"files", r.manifest.files.size()}});
      } else {
        std::cout << "verified: " << r.name << "@" << r.version << " signed by " << r.principal << " (" << r.key_fingerprint
                  << ")\n";
      }
    }
    if (opt->json) std::cout << results.dump(2) << "\n";
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
