#include "hub/http.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "hub/credentials.h"
#include "io/atomic_file.h"
#include "io/error.h"

namespace fs = std::filesystem;

namespace gaggle::hub {
namespace {

void ensure_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Connections, TLS sessions and DNS answers shared by every transfer of the process: a
// pull that fetches hundreds of tensor parts from one blob store pays one TCP and TLS
// handshake, not one per part. Thread-safe through libcurl's lock callbacks; never
// freed (transfers may run until exit).
struct CurlShare {
  CURLSH* handle = nullptr;
  std::mutex locks[CURL_LOCK_DATA_LAST];
};

void share_lock(CURL*, curl_lock_data data, curl_lock_access, void* p) {
  static_cast<CurlShare*>(p)->locks[data].lock();
}
void share_unlock(CURL*, curl_lock_data data, void* p) { static_cast<CurlShare*>(p)->locks[data].unlock(); }

CURLSH* curl_share() {
  static CurlShare* share = [] {
    auto* s = new CurlShare;
    s->handle = curl_share_init();
    if (!s->handle) return s;  // no sharing: every transfer connects on its own
    curl_share_setopt(s->handle, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(s->handle, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(s->handle, CURLSHOPT_USERDATA, s);
    curl_share_setopt(s->handle, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(s->handle, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(s->handle, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    return s;
  }();
  return share->handle;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* s) const { curl_slist_free_all(s); }
};

// One attempt's outcome, classified for the retry loop.
struct Attempt {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string error;  // curl's error buffer
};

bool transient(const Attempt& a) {
  switch (a.code) {
    case CURLE_OK: return a.status >= 500 || a.status == 408 || a.status == 429;
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default: return false;
  }
}

[[noreturn]] void throw_attempt(const std::string& what, const std::string& url, const Attempt& a) {
  if (a.code == CURLE_OK) {
    std::string msg = what + " '" + url + "': HTTP " + std::to_string(a.status);
    if (a.status == 404 || a.status == 410) throw Error(ErrorCode::not_found, "hub", msg);
    if (a.status == 401 || a.status == 403)
      throw Error(ErrorCode::auth, "hub", msg,
                  "set GAGGLE_TOKEN, or GAGGLE_USER and GAGGLE_PASSWORD, or configure a git credential helper for this server");
    throw Error(ErrorCode::network, "hub", msg, "check the server, then run the command again");
  }
  std::string msg = what + " '" + url + "': " + (a.error.empty() ? curl_easy_strerror(a.code) : a.error);
  if (a.code == CURLE_PEER_FAILED_VERIFICATION || a.code == CURLE_SSL_CACERT_BADFILE || a.code == CURLE_SSL_CERTPROBLEM)
    throw Error(ErrorCode::auth, "hub", msg, "the server's certificate is not trusted; pass --ca-file with your private CA");
  throw Error(ErrorCode::network, "hub", msg, "check that the server is reachable, then run the command again");
}

// Basic-auth credentials, as git finds them: GAGGLE_TOKEN / GAGGLE_USER + GAGGLE_PASSWORD
// first; else, once a server has answered 401, git's credential helpers, asked once per
// scheme://host[:port] in this process (no helper is run for servers that need none).
struct HelperAnswer {
  bool asked = false;
  std::optional<Credential> credential;
};
std::mutex helper_mutex;
std::map<std::string, HelperAnswer> helper_answers;

std::string origin_of(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  auto slash = url.find('/', scheme + 3);
  std::string origin = url.substr(0, slash);
  if (auto at = origin.find('@', scheme + 3); at != std::string::npos) origin.erase(scheme + 3, at - scheme - 2);
  return origin;
}

std::optional<Credential> credential_for(const std::string& url) {
  if (auto c = credential_from_environment()) return c;
  std::lock_guard<std::mutex> lock(helper_mutex);
  auto it = helper_answers.find(origin_of(url));
  if (it == helper_answers.end()) return std::nullopt;
  return it->second.credential;
}

// After a 401: asks git's helpers (once per origin). True when there is a credential
// that was not tried yet, so the request is worth repeating.
bool learn_credential_after_401(const std::string& url) {
  if (credential_from_environment()) return false;  // the environment's were refused: no second guess
  std::lock_guard<std::mutex> lock(helper_mutex);
  HelperAnswer& answer = helper_answers[origin_of(url)];
  if (answer.asked) return false;
  answer.asked = true;
  answer.credential = credential_from_git_helper(url);
  return answer.credential.has_value();
}

bool unauthorised(const Attempt& a) { return a.code == CURLE_OK && a.status == 401; }

struct Transfer {
  std::unique_ptr<CURL, CurlDeleter> curl;
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  char error[CURL_ERROR_SIZE] = {0};
  const HttpOptions* options = nullptr;
  std::string item;
  std::uint64_t base = 0;   // bytes already present before this attempt (resume)
  std::uint64_t total = 0;  // expected total, 0 unknown
};

int on_progress(void* p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(p);
  if (!t->options->progress) return 0;
  bool upload = ultotal > 0 || ulnow > 0;
  std::uint64_t now = static_cast<std::uint64_t>(upload ? ulnow : dlnow) + t->base;
  std::uint64_t total = t->total ? t->total : static_cast<std::uint64_t>(upload ? ultotal : dltotal) + t->base;
  t->options->progress(Progress{t->options->phase, t->item, now, total, "bytes"});
  return 0;
}

void setup(Transfer& t, const std::string& url, const HttpOptions& options) {
  ensure_curl();
  t.curl.reset(curl_easy_init());
  if (!t.curl) throw Error(ErrorCode::io, "hub", "cannot start an HTTP transfer (curl_easy_init failed)");
  if (CURLSH* share = curl_share()) curl_easy_setopt(t.curl.get(), CURLOPT_SHARE, share);
  t.options = &options;
  t.item = url;
  CURL* c = t.curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t.error);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);  // stalled for 60 s: a transient failure
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "gaggle-hub/1");
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  if (!options.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  if (auto cred = credential_for(url)) {  // the same basic auth git gets
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, cred->username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, cred->password.c_str());
  }
}

Attempt perform(Transfer& t) {
  Attempt a;
  t.error[0] = 0;
  a.code = curl_easy_perform(t.curl.get());
  curl_easy_getinfo(t.curl.get(), CURLINFO_RESPONSE_CODE, &a.status);
  a.error = t.error;
  return a;
}

void sleep_backoff(const HttpOptions& options, int attempt) {
  int ms = options.backoff_ms << std::min(attempt, 8);
  std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, 10000)));
}

// A response body kept in memory, up to a limit: a server that sends more (a wrong URL, or
// one that never stops) is refused, not buffered until memory runs out. An error answer's
// body is not kept (its status decides), and is cut off after 1 MiB.
struct BoundedBody {
  CURL* curl;
  std::string* body;
  std::uint64_t limit;
  bool exceeded = false;
  std::uint64_t discarded = 0;
  bool error_body_cut = false;
};

size_t append_bounded(char* data, size_t size, size_t n, void* p) {
  auto* b = static_cast<BoundedBody*>(p);
  long status = 0;
  curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status >= 300) {
    b->discarded += size * n;
    if (b->discarded <= (1u << 20)) return size * n;
    b->error_body_cut = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  if (b->body->size() + size * n > b->limit) {
    b->exceeded = true;
    return 0;
  }
  b->body->append(data, size * n);
  return size * n;
}

// After a transfer through a BoundedBody: an error answer whose body was cut short is
// still that answer, and its status decides as for any other.
void settle(Attempt& a, const BoundedBody& sink) {
  if (sink.error_body_cut) a.code = CURLE_OK;
}

[[noreturn]] void throw_too_large(const std::string& what, const std::string& url, std::uint64_t limit) {
  throw Error(ErrorCode::invalid, "hub",
              what + " '" + url + "': the server sent more than " + std::to_string(limit) +
                  " bytes, the most gaggle reads for it",
              "the server answers with something other than what was asked for: check the URL and the server");
}

struct FileSink {
  int fd = -1;
  Transfer* transfer = nullptr;
  bool resuming = false;
  bool checked = false;
  std::uint64_t written = 0;
  std::uint64_t limit = 0;  // the file's expected size (0: unknown): bytes past it are refused
  bool failed = false;
  bool exceeded = false;
};

size_t write_file(char* data, size_t size, size_t n, void* p) {
  auto* sink = static_cast<FileSink*>(p);
  if (!sink->checked) {
    sink->checked = true;
    long status = 0;
    curl_easy_getinfo(sink->transfer->curl.get(), CURLINFO_RESPONSE_CODE, &status);
    if (status >= 300) return size * n;  // an error body: discarded, the status decides
    if (sink->resuming && status == 200) {  // the server ignored Range: start over
      if (::ftruncate(sink->fd, 0) != 0 || ::lseek(sink->fd, 0, SEEK_SET) < 0) {
        sink->failed = true;
        return 0;
      }
      sink->transfer->base = 0;
    }
  }
  long status = 0;
  curl_easy_getinfo(sink->transfer->curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status >= 300) return size * n;
  // A server that sends more than the manifest's size would fill the disk before the
  // sha256 check could fail: stop at the size.
  if (sink->limit && sink->transfer->base + sink->written + size * n > sink->limit) {
    sink->exceeded = true;
    return 0;
  }
  const char* p2 = data;
  size_t left = size * n;
  while (left > 0) {
    ssize_t w = ::write(sink->fd, p2, left);
    if (w < 0) {
      sink->failed = true;
      return 0;
    }
    p2 += w;
    left -= static_cast<size_t>(w);
  }
  sink->written += size * n;
  return size * n;
}

// Collects ETag and Last-Modified, starting over at each response's status line
// (redirects and 100-continue send several header blocks).
size_t collect_validators(char* data, size_t size, size_t n, void* p) {
  auto* v = static_cast<HttpValidators*>(p);
  std::string_view line(data, size * n);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (line.rfind("HTTP/", 0) == 0) {
    *v = HttpValidators{};
    return size * n;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (name == "etag") v->etag = std::string(value);
  if (name == "last-modified") v->last_modified = std::string(value);
  return size * n;
}

}  // namespace

std::string url_resolve(const std::string& base, const std::string& relative) {
  if (relative.find("://") != std::string::npos) return relative;
  std::string b = base;
  if (auto q = b.find('?'); q != std::string::npos) b.resize(q);
  auto slash = b.rfind('/');
  if (slash == std::string::npos || slash < b.find("://") + 3) return b + "/" + relative;
  return b.substr(0, slash + 1) + relative;
}

std::string http_get(const std::string& url, const HttpOptions& options, std::uint64_t* bytes,
                     std::uint64_t max_bytes) {
  for (int attempt = 0;; ++attempt) {
    Transfer t;
    setup(t, url, options);
    std::string body;
    BoundedBody sink{t.curl.get(), &body, max_bytes};
    curl_easy_setopt(t.curl.get(), CURLOPT_WRITEFUNCTION, append_bounded);
    curl_easy_setopt(t.curl.get(), CURLOPT_WRITEDATA, &sink);
    Attempt a = perform(t);
    if (sink.exceeded) throw_too_large("cannot download", url, max_bytes);
    settle(a, sink);
    if (unauthorised(a) && learn_credential_after_401(url)) continue;  // again, with git's credential
    if (a.code == CURLE_OK && a.status >= 200 && a.status < 300) {
      if (bytes) *bytes += body.size();
      return body;
    }
    if (!transient(a) || attempt >= options.retries) throw_attempt("cannot download", url, a);
    sleep_backoff(options, attempt);
  }
}

ConditionalGet http_get_conditional(const std::string& url, const HttpValidators& known, const HttpOptions& options,
                                    std::uint64_t* bytes, std::uint64_t max_bytes) {
  for (int attempt = 0;; ++attempt) {
    Transfer t;
    setup(t, url, options);
    ConditionalGet got;
    curl_slist* headers = nullptr;
    // Header values come from the server: refuse ones that could split the request.
    auto safe = [](const std::string& v) { return v.find_first_of("\r\n") == std::string::npos; };
    if (!known.etag.empty() && safe(known.etag))
      headers = curl_slist_append(headers, ("If-None-Match: " + known.etag).c_str());
    if (!known.last_modified.empty() && safe(known.last_modified))
      headers = curl_slist_append(headers, ("If-Modified-Since: " + known.last_modified).c_str());
    t.headers.reset(headers);
    bool conditional = headers != nullptr;
    if (headers) curl_easy_setopt(t.curl.get(), CURLOPT_HTTPHEADER, headers);
    BoundedBody sink{t.curl.get(), &got.body, max_bytes};
    curl_easy_setopt(t.curl.get(), CURLOPT_WRITEFUNCTION, append_bounded);
    curl_easy_setopt(t.curl.get(), CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(t.curl.get(), CURLOPT_HEADERFUNCTION, collect_validators);
    curl_easy_setopt(t.curl.get(), CURLOPT_HEADERDATA, &got.validators);
    Attempt a = perform(t);
    if (sink.exceeded) throw_too_large("cannot download", url, max_bytes);
    settle(a, sink);
    if (unauthorised(a) && learn_credential_after_401(url)) continue;  // again, with git's credential
    if (a.code == CURLE_OK && a.status == 304) {
      if (!conditional)
        throw Error(ErrorCode::network, "hub", "cannot download '" + url + "': HTTP 304 to a request that made no condition",
                    "check the server or proxy in between, then run the command again");
      got.not_modified = true;
      got.body.clear();
      if (got.validators.empty()) got.validators = known;
      return got;
    }
    if (a.code == CURLE_OK && a.status >= 200 && a.status < 300) {
      if (bytes) *bytes += got.body.size();
      return got;
    }
    if (!transient(a) || attempt >= options.retries) throw_attempt("cannot download", url, a);
    sleep_backoff(options, attempt);
  }
}

std::uint64_t http_download(const std::string& url, const fs::path& part_file, std::uint64_t expected_size,
                            const HttpOptions& options) {
  std::uint64_t transferred = 0;
  for (int attempt = 0;; ++attempt) {
    int fd = ::open(part_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(ErrorCode::io, "hub", "cannot open '" + part_file.string() + "': " + errno_text(errno));
    struct FdCloser {
      int fd;
      ~FdCloser() { ::close(fd); }
    } closer{fd};
    off_t have = ::lseek(fd, 0, SEEK_END);
    if (have < 0) throw Error(ErrorCode::io, "hub", "cannot seek '" + part_file.string() + "'");
    if (expected_size && static_cast<std::uint64_t>(have) == expected_size) {
      ::fsync(fd);
      return transferred;
    }
    if (expected_size && static_cast<std::uint64_t>(have) > expected_size) {  // junk: start over
      if (::ftruncate(fd, 0) != 0) throw Error(ErrorCode::io, "hub", "cannot truncate '" + part_file.string() + "'");
      have = 0;
    }
    Transfer t;
    setup(t, url, options);
    t.base = static_cast<std::uint64_t>(have);
    t.total = expected_size;
    FileSink sink;
    sink.fd = fd;
    sink.transfer = &t;
    sink.resuming = have > 0;
    sink.limit = expected_size;
    curl_easy_setopt(t.curl.get(), CURLOPT_WRITEFUNCTION, write_file);
    curl_easy_setopt(t.curl.get(), CURLOPT_WRITEDATA, &sink);
    if (have > 0) curl_easy_setopt(t.curl.get(), CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(have));
    Attempt a = perform(t);
    if (unauthorised(a) && learn_credential_after_401(url)) continue;  // again, with git's credential
    transferred += sink.written;
    if (sink.failed)
      throw Error(ErrorCode::io, "hub", "cannot write '" + part_file.string() + "': " + errno_text(errno));
    if (sink.exceeded)
      throw Error(ErrorCode::mismatch, "hub",
                  "'" + url + "' sent more than the " + std::to_string(expected_size) + " bytes the manifest gives",
                  "the file changed after publishing; ask its publisher");
    if (a.code == CURLE_OK && a.status >= 200 && a.status < 300) {
      if (::fsync(fd) != 0) throw Error(ErrorCode::io, "hub", "cannot fsync '" + part_file.string() + "'");
      off_t now = ::lseek(fd, 0, SEEK_END);
      if (!expected_size || static_cast<std::uint64_t>(now) >= expected_size) return transferred;
      a.code = CURLE_PARTIAL_FILE;  // a short body: resume
    }
    if (a.code == CURLE_OK && a.status == 416 && have > 0) {  // what we have may be all there is
      ::fsync(fd);
      return transferred;
    }
    if (!transient(a) || attempt >= options.retries) throw_attempt("cannot download", url, a);
    sleep_backoff(options, attempt);
  }
}

namespace {

// A PUT of `size` bytes with the retry loop every transfer has. `attach_source(curl)`
// points the attempt's transfer at the start of the bytes (a retry reads them again).
void http_put(const std::string& url, std::uint64_t size, const HttpOptions& options,
              const std::function<void(CURL*)>& attach_source) {
  for (int attempt = 0;; ++attempt) {
    Transfer t;
    setup(t, url, options);
    t.total = size;
    std::string body;  // the server's answer, read only to finish the exchange
    BoundedBody sink{t.curl.get(), &body, kMaxDocumentBytes};
    curl_easy_setopt(t.curl.get(), CURLOPT_UPLOAD, 1L);
    attach_source(t.curl.get());
    curl_easy_setopt(t.curl.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
    curl_easy_setopt(t.curl.get(), CURLOPT_WRITEFUNCTION, append_bounded);
    curl_easy_setopt(t.curl.get(), CURLOPT_WRITEDATA, &sink);
    Attempt a = perform(t);
    if (sink.exceeded) throw_too_large("cannot upload to", url, kMaxDocumentBytes);
    settle(a, sink);
    if (unauthorised(a) && learn_credential_after_401(url)) continue;  // again, with git's credential
    if (a.code == CURLE_OK && a.status >= 200 && a.status < 300) return;
    if (!transient(a) || attempt >= options.retries) throw_attempt("cannot upload to", url, a);
    sleep_backoff(options, attempt);
  }
}

}  // namespace

void http_put_file(const std::string& url, const fs::path& file, const HttpOptions& options) {
  std::error_code ec;
  auto size = fs::file_size(file, ec);
  if (ec) throw Error(ErrorCode::not_found, "hub", "cannot read '" + file.string() + "': " + ec.message());
  std::unique_ptr<FILE, int (*)(FILE*)> in(nullptr, &std::fclose);
  http_put(url, size, options, [&](CURL* curl) {
    in.reset(std::fopen(file.c_str(), "rb"));
    if (!in) throw Error(ErrorCode::io, "hub", "cannot open '" + file.string() + "': " + errno_text(errno));
    curl_easy_setopt(curl, CURLOPT_READDATA, in.get());  // libcurl's default reader: fread
  });
}

namespace {

struct MemorySource {
  std::string_view bytes;
  std::size_t at = 0;
};

size_t read_memory(char* out, size_t size, size_t n, void* p) {
  auto* src = static_cast<MemorySource*>(p);
  size_t take = std::min(size * n, src->bytes.size() - src->at);
  std::memcpy(out, src->bytes.data() + src->at, take);
  src->at += take;
  return take;
}

// Stops a 200 answer to a Range request after its first bytes: the whole document is
// not wanted (the caller falls back to a plain download).
struct RangeSink {
  Transfer* transfer = nullptr;
  std::string body;
  std::uint64_t size = 0;  // what the range asked for: more is refused
  bool whole = false;
  bool exceeded = false;
};

size_t write_range(char* data, size_t size, size_t n, void* p) {
  auto* sink = static_cast<RangeSink*>(p);
  long status = 0;
  curl_easy_getinfo(sink->transfer->curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status == 200) {
    sink->whole = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR), which the caller expects
  }
  if (status < 200 || status >= 300) return size * n;  // an error body: discarded, the status decides
  if (sink->body.size() + size * n > sink->size) {
    sink->exceeded = true;
    return 0;
  }
  sink->body.append(data, size * n);
  return size * n;
}

}  // namespace

void http_put_bytes(const std::string& url, std::string_view bytes, const HttpOptions& options) {
  MemorySource src;
  http_put(url, bytes.size(), options, [&](CURL* curl) {
    src = MemorySource{bytes, 0};
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_memory);
    curl_easy_setopt(curl, CURLOPT_READDATA, &src);
  });
}

std::optional<std::string> http_get_range(const std::string& url, std::uint64_t offset, std::uint64_t size,
                                          const HttpOptions& options, std::uint64_t* bytes) {
  if (size == 0) return std::string();
  const std::string range = std::to_string(offset) + "-" + std::to_string(offset + size - 1);
  for (int attempt = 0;; ++attempt) {
    Transfer t;
    setup(t, url, options);
    t.total = size;
    RangeSink sink;
    sink.transfer = &t;
    sink.size = size;
    curl_easy_setopt(t.curl.get(), CURLOPT_RANGE, range.c_str());
    curl_easy_setopt(t.curl.get(), CURLOPT_WRITEFUNCTION, write_range);
    curl_easy_setopt(t.curl.get(), CURLOPT_WRITEDATA, &sink);
    Attempt a = perform(t);
    if (sink.exceeded)
      throw Error(ErrorCode::mismatch, "hub",
                  "'" + url + "' answered bytes " + range + " with more than " + std::to_string(size) + " bytes");
    if (sink.whole || (a.code == CURLE_OK && a.status == 200)) return std::nullopt;
    if (unauthorised(a) && learn_credential_after_401(url)) continue;  // again, with git's credential
    if (a.code == CURLE_OK && a.status == 206) {
      if (bytes) *bytes += sink.body.size();
      if (sink.body.size() != size)
        throw Error(ErrorCode::mismatch, "hub", "'" + url + "' answered bytes " + range + " with " +
                                                    std::to_string(sink.body.size()) + " bytes");
      return std::move(sink.body);
    }
    if (!transient(a) || attempt >= options.retries) throw_attempt("cannot download", url, a);
    sleep_backoff(options, attempt);
  }
}

std::optional<std::uint64_t> http_head_size(const std::string& url, const HttpOptions& options) {
  for (int attempt = 0;; ++attempt) {
    Transfer t;
    setup(t, url, options);
    curl_easy_setopt(t.curl.get(), CURLOPT_NOBODY, 1L);
    Attempt a = perform(t);
    if (unauthorised(a) && learn_credential_after_401(url)) continue;  // again, with git's credential
    if (a.code == CURLE_OK && (a.status == 404 || a.status == 410)) return std::nullopt;
    if (a.code == CURLE_OK && a.status >= 200 && a.status < 300) {
      curl_off_t len = -1;
      curl_easy_getinfo(t.curl.get(), CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
      return len < 0 ? 0 : static_cast<std::uint64_t>(len);
    }
    if (!transient(a) || attempt >= options.retries) throw_attempt("cannot reach", url, a);
    sleep_backoff(options, attempt);
  }
}

}  // namespace gaggle::hub
