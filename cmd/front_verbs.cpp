// gaggle's half of the split (cmd/torch_exec.h): the verbs and debug tools that need
// LibTorch are stubs here that exec() the torch binary, which defines the real ones
// (cmd/torch_verbs.cpp names the files). A verb listed here and also compiled into
// gaggle fails to link (two definitions): the linker keeps the two lists honest.
#include "torch_exec.h"
#include "verbs.h"

namespace gaggle::cli {

bool is_torch_binary() { return false; }

Runner setup_train_expert(CLI::App& sub) { return delegate_to_torch(sub); }
Runner setup_train_gate(CLI::App& sub) { return delegate_to_torch(sub); }
Runner setup_assemble(CLI::App& sub) { return delegate_to_torch(sub); }
Runner setup_eval(CLI::App& sub) { return delegate_to_torch(sub); }
Runner setup_generate(CLI::App& sub) { return delegate_to_torch(sub); }
Runner setup_import_peft(CLI::App& sub) { return delegate_to_torch(sub); }

Runner setup_debug_selfcheck(CLI::App& sub) { return delegate_to_torch(sub); }
Runner setup_debug_route(CLI::App& sub) { return delegate_to_torch(sub); }
Runner setup_debug_forward(CLI::App& sub) { return delegate_to_torch(sub); }
Runner setup_debug_pretrain(CLI::App& sub) { return delegate_to_torch(sub); }

}  // namespace gaggle::cli
