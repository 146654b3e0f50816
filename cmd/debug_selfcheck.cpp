// gaggle debug selfcheck — proves an installation works: every library loads, the
// crypto gives known answers, and LibTorch's matmul runs at a sane speed.
#include <cstdio>
#include <cstdlib>

#include "io/sha256.h"
#include "verbs.h"
#ifdef GAGGLE_WITH_TORCH
#include "model/runtime.h"
#endif

namespace gaggle::cli {

Runner setup_debug_selfcheck(CLI::App& sub) {
  auto threads = std::make_shared<int>(0);
  sub.add_option("--threads", *threads, "Compute threads (0 = every core)");
  set_example(sub, "  gaggle debug selfcheck --threads 2");
  return [threads]() -> int {
    int failures = 0;
    auto check = [&](const char* what, bool ok, const std::string& detail) {
      std::printf("%-8s %-28s %s\n", ok ? "ok" : "FAILED", what, detail.c_str());
      if (!ok) ++failures;
    };
    std::string abc = io::sha256_hex(std::string_view("abc"));
    check("sha256 (OpenSSL)", abc == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", abc.substr(0, 16) + "...");
#ifdef GAGGLE_WITH_TORCH
    model::configure_runtime({*threads, "cpu"});
    std::string blas = model::loaded_blas_library();
    check("libtorch", true, model::torch_version() + ", " + std::to_string(model::torch_threads()) + " threads");
    auto g = model::measure_gemm(1024, 5);
    char buf[128];
    std::snprintf(buf, sizeof buf, "%.1f GFLOP/s (1024^2 float32, %d threads)", g.gflops, g.threads);
    // The reference BLAS manages ~7 GFLOP/s here; OpenBLAS 100+. Below 20 means a slow BLAS.
    check("matmul speed", g.gflops > 20, buf);
    check("blas library", !blas.empty(), blas.empty() ? "none found" : blas);
    // gaggle sets PASSIVE for the torch binary unless the user chose (cmd/torch_exec.cpp).
    const char* wait = std::getenv("OMP_WAIT_POLICY");
    check("openmp wait policy", true, wait ? wait : "unset (idle workers spin)");
    if (const char* core = std::getenv("OPENBLAS_CORETYPE"))
      std::printf("note: OPENBLAS_CORETYPE=%s is set; it can halve OpenBLAS speed\n", core);
#endif
    std::printf("%s\n", failures ? "selfcheck: FAILED" : "selfcheck: all good");
    return failures ? kExitFailure : kExitSuccess;
  };
}

}  // namespace gaggle::cli
