#include "io/atomic_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "io/error.h"

namespace fs = std::filesystem;

namespace gaggle::io {
namespace {

constexpr const char* kTempPrefix = ".gaggle-tmp-";

[[noreturn]] void fail(const std::string& what, const fs::path& path, int err) {
  throw_error(err == ENOENT ? ErrorCode::not_found : ErrorCode::io, "io",
              what + " '" + path.string() + "': " + errno_text(err));
}

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}() ^ static_cast<unsigned long>(::getpid())};
  std::ostringstream s;
  s << std::hex << rng();
  return s.str();
}

fs::path temp_beside(const fs::path& target) {
  fs::path parent = target.parent_path();
  if (parent.empty()) parent = ".";
  return parent / (std::string(kTempPrefix) + target.filename().string() + "." + random_suffix());
}

void write_all(int fd, const std::byte* data, std::size_t size, const fs::path& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", path, errno);
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void fsync_tree(const fs::path& dir) {
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file() || entry.is_directory()) fsync_path(entry.path());
  }
  fsync_path(dir);
}

}  // namespace

void fsync_path(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open", path, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some filesystems refuse fsync on directories (EINVAL): durability is best effort there.
  if (rc != 0 && err != EINVAL) fail("cannot fsync", path, err);
}

AtomicFileWriter::AtomicFileWriter(fs::path path, int mode) : path_(std::move(path)) {
  temp_ = temp_beside(path_);
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd_ < 0) fail("cannot create", temp_, errno);
  ::fchmod(fd_, mode);  // not subject to the umask: 0600 keys stay 0600, 0644 stays 0644
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_.c_str());
  }
}

void AtomicFileWriter::write(std::span<const std::byte> data) { write_all(fd_, data.data(), data.size(), temp_); }

void AtomicFileWriter::write(std::string_view data) {
  write_all(fd_, reinterpret_cast<const std::byte*>(data.data()), data.size(), temp_);
}

void AtomicFileWriter::commit() {
  if (::fsync(fd_) != 0) fail("cannot fsync", temp_, errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    ::unlink(temp_.c_str());
    fail("cannot close", temp_, errno);
  }
  fd_ = -1;
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(temp_.c_str());
    fail("cannot rename into", path_, err);
  }
  fs::path parent = path_.parent_path();
  fsync_path(parent.empty() ? fs::path(".") : parent);
}

void write_file_atomic(const fs::path& path, std::span<const std::byte> data, int mode) {
  AtomicFileWriter w(path, mode);
  w.write(data);
  w.commit();
}

void write_file_atomic(const fs::path& path, std::string_view data, int mode) {
  write_file_atomic(path, std::as_bytes(std::span(data.data(), data.size())), mode);
}

AtomicDirectory::AtomicDirectory(fs::path target) : target_(std::move(target)) {
  fs::path parent = target_.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) throw_error(ErrorCode::io, "io", "cannot create '" + parent.string() + "': " + ec.message());
  }
  temp_ = temp_beside(target_);
  if (::mkdir(temp_.c_str(), 0755) != 0) fail("cannot create", temp_, errno);
}

AtomicDirectory::~AtomicDirectory() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(temp_, ec);
  }
}

void AtomicDirectory::commit(bool replace) {
  fsync_tree(temp_);
  fs::path parent = target_.parent_path().empty() ? fs::path(".") : target_.parent_path();
  if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, target_.c_str(), RENAME_NOREPLACE) == 0) {
    committed_ = true;
    fsync_path(parent);
    return;
  }
  int err = errno;
  if (err != EEXIST && err != ENOTEMPTY) fail("cannot move into place", target_, err);
  if (!replace)
    throw_error(ErrorCode::exists, "io", "'" + target_.string() + "' already exists",
                "remove it first, or pass --force to replace it");
  // Swap: the target now holds the new contents and temp_ the old ones.
  if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) != 0)
    fail("cannot replace", target_, errno);
  committed_ = true;
  fsync_path(parent);
  std::error_code ec;
  fs::remove_all(temp_, ec);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    bool exists = fs::exists(path, ec);
    throw_error(exists ? ErrorCode::io : ErrorCode::not_found, "io",
                "cannot read '" + path.string() + "': " + (exists ? "permission denied or not a file" : "no such file"));
  }
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw_error(ErrorCode::io, "io", "cannot read '" + path.string() + "'");
  return s.str();
}

void remove_stale_temporaries(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().filename().string().rfind(kTempPrefix, 0) == 0) fs::remove_all(entry.path(), ec);
  }
}

}  // namespace gaggle::io
