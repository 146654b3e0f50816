#pragma once
// HTTP(S) transfers with libcurl for the blob store and static pool indexes. TLS is
// always verified (system CAs, or ca_file for a private CA). Transient failures
// (connection refused or reset, timeouts, 5xx) are retried with exponential backoff;
// downloads resume with HTTP Range. Credentials (HTTP basic, as for git): GAGGLE_USER +
// GAGGLE_PASSWORD, or GAGGLE_TOKEN as the password of GAGGLE_USER or 'gaggle'; else, when
// a server answers 401, git's credential helpers (`git credential fill`, asked once per
// scheme://host[:port] per process, never prompting) and the request is repeated once
// with what they know. Never printed.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "hub/progress.h"

namespace gaggle::hub {

struct HttpOptions {
  std::filesystem::path ca_file;  // PEM bundle of a private CA; empty = the system's
  int retries = 4;                // extra attempts after a transient failure
  int backoff_ms = 200;           // first retry delay, doubled each time
  ProgressFn progress;            // called as bytes move
  std::string phase = "download"; // Progress::phase
};

// The most a document read into memory may hold unless the caller says otherwise: pool
// indexes and manifests (which list every tensor of a bundle) are far smaller.
inline constexpr std::uint64_t kMaxDocumentBytes = std::uint64_t{64} << 20;

// GETs a small document into memory. Throws Error{not_found} on 404/410,
// Error{auth} on 401/403 or a TLS failure, Error{invalid} when the server sends more than
// `max_bytes` (the transfer stops there), Error{network} otherwise.
// Adds the body's size to *bytes when given.
std::string http_get(const std::string& url, const HttpOptions& options, std::uint64_t* bytes = nullptr,
                     std::uint64_t max_bytes = kMaxDocumentBytes);

// What a server said identifies the version of a document (RFC 9110 validators).
struct HttpValidators {
  std::string etag;           // the ETag header, as sent (quotes included)
  std::string last_modified;  // the Last-Modified header, as sent
  bool empty() const { return etag.empty() && last_modified.empty(); }
};

struct ConditionalGet {
  bool not_modified = false;  // 304: the copy the caller holds is current (body empty)
  std::string body;           // 200: the document
  HttpValidators validators;  // of the document as the server has it now (may be empty)
};

// GET with If-None-Match / If-Modified-Since from `known` (those that are set; none when
// `known` is empty). A server that ignores the conditions answers 200 with the whole
// body, which the caller then compares. Throws as http_get, and Error{network} for a 304
// to a request that made no condition. Adds the body's size to *bytes (0 for a 304).
ConditionalGet http_get_conditional(const std::string& url, const HttpValidators& known, const HttpOptions& options,
                                    std::uint64_t* bytes = nullptr, std::uint64_t max_bytes = kMaxDocumentBytes);

// Downloads `url` into `part_file`, continuing from what it already holds (Range),
// until it has `expected_size` bytes; the file is fsync'ed. Returns the bytes
// transferred by this call. A server that ignores Range starts the file over.
std::uint64_t http_download(const std::string& url, const std::filesystem::path& part_file,
                            std::uint64_t expected_size, const HttpOptions& options);

// PUTs a file (WebDAV-style blob stores). Throws as http_get.
void http_put_file(const std::string& url, const std::filesystem::path& file, const HttpOptions& options);

// PUTs bytes held in memory (a tensor part). Throws as http_get.
void http_put_bytes(const std::string& url, std::string_view bytes, const HttpOptions& options);

// GETs `size` bytes of `url` from `offset` (one Range). Returns nothing when the server
// ignored the Range and answered the whole document (200): the caller then downloads it
// whole instead. Throws as http_get, and Error{mismatch} for a 206 of the wrong length.
// Adds the bytes received to *bytes when given.
std::optional<std::string> http_get_range(const std::string& url, std::uint64_t offset, std::uint64_t size,
                                          const HttpOptions& options, std::uint64_t* bytes = nullptr);

// HEAD: the Content-Length, or nothing when the server says 404.
std::optional<std::uint64_t> http_head_size(const std::string& url, const HttpOptions& options);

// Resolves `relative` against the directory of `base` ("http://h/a/pool.json" + "b/c" ->
// "http://h/a/b/c"); an absolute URL is returned as is.
std::string url_resolve(const std::string& base, const std::string& relative);

}  // namespace gaggle::hub
