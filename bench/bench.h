#pragma once
// gaggle-bench: benchmarks (never tests). Each benchmark is bench/<name>.cpp with a
// setup function listed in bench/main.cpp; each prints its figures together with the
// command line that produced them and the machine facts that move them.
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace gaggle::bench {

using Runner = std::function<int()>;
using SetupFn = Runner (*)(CLI::App& sub);

// "command: gaggle-bench ...", threads, BLAS, OPENBLAS_CORETYPE: printed before figures.
std::string describe_run();
// The command line as typed, for the record.
const std::string& command_line();

}  // namespace gaggle::bench
