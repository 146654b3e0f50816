// gaggle keygen — make an Ed25519 key pair in OpenSSH's formats (lib/bundle/keys.h).
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "bundle/keys.h"
#include "verbs.h"

namespace gaggle::cli {
namespace {

struct KeygenOptions {
  std::string path;
  std::string comment;
};

std::string default_comment() {
  const char* user = std::getenv("USER");
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(user ? user : "gaggle") + "@" + (host[0] ? host : "localhost");
}

}  // namespace

Runner setup_keygen(CLI::App& sub) {
  auto opt = std::make_shared<KeygenOptions>();
  sub.add_option("-f,--file", opt->path, "Where to write the private key (the public key goes to PATH.pub)")->required();
  sub.add_option("-C,--comment", opt->comment, "Comment stored with the key (default: user@host)");
  set_example(sub,
              "  gaggle keygen -f ~/.config/gaggle/id_ed25519 -C alice@example.com\n"
              "  echo \"alice@example.com namespaces=\\\"gaggle-bundle\\\" $(cut -d' ' -f1,2 ~/.config/gaggle/id_ed25519.pub)\" >> allowed_signers");
  return [opt]() -> int {
    std::string comment = opt->comment.empty() ? default_comment() : opt->comment;
    bundle::PublicKey pub = bundle::generate_ed25519_keypair(opt->path, comment);
    std::cerr << "Your private key is in " << opt->path << " (mode 0600, unencrypted)\n"
              << "Your public key is in " << opt->path << ".pub\n"
              << "To let others trust your bundles, give them this allowed-signers line:\n"
              << "  " << comment << " namespaces=\"gaggle-bundle\" " << pub.type << " "
              << pub.to_openssh().substr(pub.type.size() + 1, pub.to_openssh().find(' ', pub.type.size() + 1) - pub.type.size() - 1)
              << "\n";
    std::cout << pub.fingerprint() << " " << comment << " (ED25519)\n";
    return kExitSuccess;
  };
}

}  // namespace gaggle::cli
