#pragma once
// Direct single-precision GEMM for the routed layer's many small per-expert products.
//
// LibTorch's own CPU BLAS wrapper (at::native::cpublas::gemm) is not exported by the
// shared library, and at::mm costs microseconds of dispatch per call. The BLAS that
// LibTorch itself loaded (OpenBLAS on Debian: libblas.so.3) is found at run time with
// dlsym; where there is none (an upstream MKL build), callers use LibTorch ops instead.
#include <cstdint>

namespace gaggle::route::detail {

// C = alpha · op(A) · op(B) + beta · C, row-major; op = transpose when trans_* is true.
using SgemmFn = void (*)(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                         const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                         std::int64_t ldc);

// nullptr when no CBLAS sgemm is loaded in this process.
SgemmFn row_major_sgemm();

// While alive, BLAS calls from this thread run on one thread (the OpenMP thread count of
// the calling thread is 1): many small GEMMs each forking a team cost far more than they
// compute (measured 30x on 2 busy cores). Restores the previous count on destruction.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace gaggle::route::detail
