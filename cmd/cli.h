#pragma once
// Shared pieces of the command line: exit codes, the verb table entry, and helpers
// every verb uses. Only main.cpp dispatches, catches and maps exit codes.
#include <cstdint>
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace gaggle::cli {

// The exit-code contract (style.md §6): 0 success; 1 a runtime failure, including "the
// check ran and the answer is no"; 2 a usage error.
enum ExitCode : int { kExitSuccess = 0, kExitFailure = 1, kExitUsage = 2 };

// A verb's setup function adds its options to `sub` and returns what runs it.
using Runner = std::function<int()>;
using SetupFn = Runner (*)(CLI::App& sub);

struct Verb {
  const char* name;
  const char* summary;
  SetupFn setup;
};

// For verbs whose issue has not landed yet: the verb exists, says so, and exits 2.
Runner not_built_yet(CLI::App& sub, const std::string& issue);

// "Example:\n  gaggle ...": every verb's --help ends with a worked example.
void set_example(CLI::App& sub, const std::string& text);

// Writes a warning line "gaggle: warning: ..." to stderr.
void warn(const std::string& message);

// A byte count for people: "512 B", "1.2 MiB", "3.0 GiB" (powers of 1024).
std::string human_bytes(std::uint64_t n);

// Whether stderr is a terminal (progress bars) and stdin a terminal (prompts).
bool stderr_is_tty();
bool stdin_is_tty();

}  // namespace gaggle::cli
