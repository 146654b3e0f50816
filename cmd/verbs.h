#pragma once
// One setup function per verb, each defined in cmd/<verb>.cpp. main.cpp lists them
// in its verb table; adding a verb = a file here, a line there, a test in tests/cmd.
// The verbs that need LibTorch are real only in the torch binary; gaggle defines them as
// stubs that exec() it (cmd/front_verbs.cpp, cmd/torch_exec.h).
#include "cli.h"

namespace gaggle::cli {

Runner setup_train_expert(CLI::App& sub);
Runner setup_train_gate(CLI::App& sub);
Runner setup_publish(CLI::App& sub);
Runner setup_pull(CLI::App& sub);
Runner setup_assemble(CLI::App& sub);
Runner setup_eval(CLI::App& sub);
Runner setup_keygen(CLI::App& sub);
Runner setup_sign(CLI::App& sub);
Runner setup_verify(CLI::App& sub);
Runner setup_inspect(CLI::App& sub);
Runner setup_hub(CLI::App& sub);
Runner setup_pool(CLI::App& sub);
Runner setup_generate(CLI::App& sub);
Runner setup_import_peft(CLI::App& sub);
Runner setup_export_peft(CLI::App& sub);
Runner setup_diff(CLI::App& sub);
Runner setup_log(CLI::App& sub);
Runner setup_debug(CLI::App& sub);

}  // namespace gaggle::cli
