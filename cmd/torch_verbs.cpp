// gaggle-torch's half of the split (cmd/torch_exec.h). The torch binary links the real
// setup functions of every verb: the torch-free ones from the gaggle_cmd object library
// shared with gaggle, and the ones that need LibTorch from their own files
// (GAGGLE_CMD_TORCH in CMakeLists.txt): train_expert, train_gate, assemble, eval,
// generate, import_peft, debug_selfcheck, debug_route, debug_forward, debug_pretrain. In gaggle those
// are stubs (cmd/front_verbs.cpp).
#include "torch_exec.h"

namespace gaggle::cli {

bool is_torch_binary() { return true; }

}  // namespace gaggle::cli
