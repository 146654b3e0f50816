#pragma once
// Helpers shared by the tests: scratch directories, fixtures, and running the built
// gaggle binary with its exit code and both output streams captured.
#include <filesystem>
#include <string>
#include <vector>

namespace gaggle::test {

// A fresh directory under $TMPDIR, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

std::filesystem::path data_dir();    // tests/data
std::filesystem::path source_dir();  // the repository root
std::filesystem::path gaggle_binary();

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv (no shell) with optional stdin text; captures stdout and stderr.
CommandResult run_command(const std::vector<std::string>& argv, const std::string& stdin_text = {},
                          const std::filesystem::path& cwd = {});
// Runs the built gaggle with these arguments.
CommandResult run_gaggle(const std::vector<std::string>& args, const std::string& stdin_text = {},
                         const std::filesystem::path& cwd = {});

std::string read_text(const std::filesystem::path& path);
void write_text(const std::filesystem::path& path, const std::string& text);

}  // namespace gaggle::test
