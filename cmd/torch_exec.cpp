#include "torch_exec.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "io/error.h"

// Set by CMakeLists.txt: the torch binary's file name, and whether this build has one.
#ifndef GAGGLE_TORCH_EXE_NAME
#define GAGGLE_TORCH_EXE_NAME "gaggle-torch"
#endif
#ifndef GAGGLE_TORCH_BUILT
#define GAGGLE_TORCH_BUILT 0
#endif

namespace gaggle::cli {
namespace {

namespace fs = std::filesystem;

char** g_argv = nullptr;

// What the stubs stand for, in set-up order ("train-expert", ..., "debug route"): the
// error for a missing torch binary lists them.
std::vector<std::string>& torch_verbs() {
  static std::vector<std::string> verbs;
  return verbs;
}

std::string full_name(const CLI::App& sub) {
  const CLI::App* parent = sub.get_parent();
  if (parent && parent->get_parent()) return parent->get_name() + " " + sub.get_name();  // "debug route"
  return sub.get_name();
}

std::string verb_list() {
  std::string list;
  for (const auto& v : torch_verbs()) list += (list.empty() ? "" : ", ") + v;
  return list;
}

}  // namespace

void remember_argv(char** argv) { g_argv = argv; }

void exec_torch(const std::string& verb) {
  if (!GAGGLE_TORCH_BUILT)
    throw Error(ErrorCode::usage, "cmd",
                "'gaggle " + verb + "' needs LibTorch, and this gaggle was built without it (GAGGLE_WITH_TORCH=OFF)",
                "the verbs that need LibTorch: " + verb_list() + "; rebuild with -DGAGGLE_WITH_TORCH=ON");
  if (!g_argv || !g_argv[0]) throw Error(ErrorCode::io, "cmd", "cannot run the torch binary: no command line");

  std::vector<fs::path> candidates;
  std::string from_env;
  if (const char* env = std::getenv("GAGGLE_TORCH_EXE"); env && *env) {
    candidates.emplace_back(env);
    from_env = " ($GAGGLE_TORCH_EXE)";
  } else {
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
      candidates.push_back(exe.parent_path() / GAGGLE_TORCH_EXE_NAME);
      candidates.push_back(exe.parent_path().parent_path() / "lib" / "gaggle" / GAGGLE_TORCH_EXE_NAME);
    }
  }

  std::string looked;
  for (const fs::path& candidate : candidates) {
    looked += "\n  " + candidate.string() + from_env;
    std::error_code ec;
    if (!fs::is_regular_file(candidate, ec)) continue;
    if (fs::equivalent(candidate, "/proc/self/exe", ec))  // it would exec itself forever
      throw Error(ErrorCode::invalid, "cmd", "'" + candidate.string() + "'" + from_env +
                  " is this gaggle itself, not the torch binary " GAGGLE_TORCH_EXE_NAME,
                  "point GAGGLE_TORCH_EXE at " GAGGLE_TORCH_EXE_NAME ", or unset it");
    // OpenMP workers that spin between parallel regions cost 2-3x on a machine whose
    // cores are shared (measured: a t5-small forward on 2 threads took 13 s spinning and
    // 5 s passive beside two busy processes); sleeping workers cost little on an idle
    // one. libgomp reads this once at load, so the torch binary gets it in its
    // environment. A value the user set is kept.
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);
    std::fflush(stdout);
    std::fflush(stderr);
    ::execv(candidate.c_str(), g_argv);  // returns only on failure
    int err = errno;
    throw Error(ErrorCode::io, "cmd", "cannot run the torch binary '" + candidate.string() + "': " + errno_text(err),
                "reinstall gaggle, or set GAGGLE_TORCH_EXE=/path/to/" GAGGLE_TORCH_EXE_NAME);
  }
  throw Error(ErrorCode::not_found, "cmd",
              "'gaggle " + verb + "' needs LibTorch, which lives in the torch binary " GAGGLE_TORCH_EXE_NAME
              ", and it is not there; looked in:" + looked,
              "the verbs that need " GAGGLE_TORCH_EXE_NAME ": " + verb_list() +
                  ". Build the " GAGGLE_TORCH_EXE_NAME " target (it sits beside gaggle), install gaggle "
                  "again (<prefix>/lib/gaggle/" GAGGLE_TORCH_EXE_NAME "), or set GAGGLE_TORCH_EXE=/path/to/"
                  GAGGLE_TORCH_EXE_NAME);
}

Runner delegate_to_torch(CLI::App& sub) {
  std::string verb = full_name(sub);
  torch_verbs().push_back(verb);
  // Everything after the verb is the torch binary's to parse, --help included.
  sub.set_help_flag();
  sub.allow_extras();
  sub.prefix_command();
  return [verb]() -> int { exec_torch(verb); };
}

void note_torch_verb(const std::string& what) { torch_verbs().push_back(what); }

}  // namespace gaggle::cli
