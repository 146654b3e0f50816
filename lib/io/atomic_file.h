#pragma once
// Atomic writes: a reader (or a crash) sees the old file or the new one, never a mix.
//
// Files: written to a temporary beside the target, fsync'ed, renamed over it, and the
// directory fsync'ed. Directories: built under a temporary name beside the target and
// renamed into place (swapped atomically with renameat2(RENAME_EXCHANGE) when one
// already exists). A killed process leaves at most a ".gaggle-tmp-*" entry behind,
// which remove_stale_temporaries() cleans.
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace gaggle::io {

void write_file_atomic(const std::filesystem::path& path, std::span<const std::byte> data, int mode = 0644);
void write_file_atomic(const std::filesystem::path& path, std::string_view data, int mode = 0644);

// Streaming variant for large files: write(), then commit(); destroying without
// commit() removes the temporary and leaves the target untouched.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::filesystem::path path, int mode = 0644);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(std::span<const std::byte> data);
  void write(std::string_view data);
  void commit();

 private:
  std::filesystem::path path_;
  std::filesystem::path temp_;
  int fd_ = -1;
};

// A directory built in a temporary beside `target` and moved into place by commit().
// Without commit() the temporary is deleted on destruction.
class AtomicDirectory {
 public:
  explicit AtomicDirectory(std::filesystem::path target);
  ~AtomicDirectory();
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  // Where to write the contents.
  const std::filesystem::path& path() const { return temp_; }
  // fsyncs the contents, then renames. With replace=false an existing target is an
  // Error{exists}; with replace=true it is swapped out atomically and then deleted.
  void commit(bool replace = false);

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  bool committed_ = false;
};

// fsync a file or directory by path (directories: so a rename inside is durable).
void fsync_path(const std::filesystem::path& path);

// Reads a whole file into a string. Throws Error{not_found|io} naming the path.
std::string read_file(const std::filesystem::path& path);

// Deletes leftovers of killed writers (".gaggle-tmp-*") directly inside `dir`.
void remove_stale_temporaries(const std::filesystem::path& dir);

}  // namespace gaggle::io
