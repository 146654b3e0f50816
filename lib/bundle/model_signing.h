#pragma once
// The OpenSSF model_signing format (v1.0), for the wider ecosystem: a Sigstore bundle
// (JSON, mediaType application/vnd.dev.sigstore.bundle.v0.3+json) whose DSSE envelope
// carries an in-toto statement listing every file's sha256 (predicate
// https://model_signing/signature/v1.0, serialization "files"), signed with an ECDSA
// key (P-256/SHA-256, P-384/SHA-384, P-521/SHA-512) over the DSSE pre-authentication
// encoding. Only the "key" flavour: no Fulcio certificates, no Rekor transparency log.
//
// The model is a single file (its resource is named ".") or a directory (resources
// named by '/'-separated relative paths). Ignored when hashing a directory: the
// signature file itself, the ignore paths, and .git, .gitattributes, .github, .gitignore.
#include <filesystem>
#include <string>
#include <vector>

namespace gaggle::bundle {

struct ModelSigningFile {
  std::string path;    // "." for a single-file model
  std::string sha256;  // hex
};

struct ModelSigningResult {
  std::string subject_name;     // the model's name in the statement
  std::string key_fingerprint;  // "sha256:<hex of the DER SubjectPublicKeyInfo>"
  std::vector<ModelSigningFile> files;
};

struct ModelSigningVerifyOptions {
  std::filesystem::path signature;                // model.sig
  std::filesystem::path public_key;               // PEM (text before the PEM block is skipped)
  std::vector<std::filesystem::path> ignore_paths;  // absolute, relative to the working directory, or to the model
};

// Throws Error{auth} (bad signature), Error{mismatch} (a file changed, is missing or is
// extra), Error{invalid} (malformed signature file), Error{unsupported} (another
// serialization or key type).
ModelSigningResult verify_model_signing(const std::filesystem::path& model, const ModelSigningVerifyOptions& options);

struct ModelSigningSignOptions {
  std::filesystem::path private_key;  // EC private key, PEM, unencrypted
  std::filesystem::path signature;    // where to write model.sig (atomically)
  std::vector<std::filesystem::path> ignore_paths;
};

ModelSigningResult sign_model_signing(const std::filesystem::path& model, const ModelSigningSignOptions& options);

// DSSE's pre-authentication encoding: "DSSEv1 <len> <type> <len> <body>".
std::string dsse_pae(const std::string& payload_type, const std::string& payload);

}  // namespace gaggle::bundle
