#pragma once
// The two executables (CONTRIBUTING.md, "Which binary does a verb go in"). `gaggle` links
// no LibTorch, so it starts in milliseconds: it runs the torch-free verbs in process.
// The verbs and debug tools that need LibTorch are linked into the torch binary,
// `gaggle-torch`; in `gaggle` their setup functions are stubs (cmd/front_verbs.cpp) that
// exec() it with the same argv, so the process (pid, signals, exit code, stdout/stderr)
// simply becomes the torch binary. The torch binary runs every verb in process.
//
// Where gaggle looks for it: $GAGGLE_TORCH_EXE if set (and only there); else beside the
// running executable (/proc/self/exe: the build tree), then <prefix>/lib/gaggle/ (an
// installed bin/gaggle), as lib/text finds libgaggle_spm.so.
#include <string>

#include "cli.h"

namespace gaggle::cli {

// true in gaggle-torch (cmd/torch_verbs.cpp), false in gaggle (cmd/front_verbs.cpp).
bool is_torch_binary();

// main() hands over its argv first: exec_torch passes it on unchanged.
void remember_argv(char** argv);

// Replaces this process with the torch binary (same argv, same environment). `verb` is
// what needed it ("train-expert", "debug route"), for the error. Does not return: throws
// Error{not_found} naming every place it looked when the torch binary is missing,
// Error{io} when exec fails, Error{usage} when this gaggle was built without LibTorch.
[[noreturn]] void exec_torch(const std::string& verb);

// The setup of a torch verb or debug tool in gaggle: accepts any arguments (--help
// included: the torch binary prints the real help) and runs exec_torch.
Runner delegate_to_torch(CLI::App& sub);

// Adds to the list of what needs the torch binary (shown when it is missing) a case that
// is not a stub of its own: "inspect MODEL_DIR".
void note_torch_verb(const std::string& what);

}  // namespace gaggle::cli
