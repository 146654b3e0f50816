#include "route/detail/cblas.h"

#include <dlfcn.h>

#include <initializer_list>

namespace gaggle::route::detail {
namespace {

// The CBLAS ABI (cblas.h), declared here so that no BLAS header is needed at build time.
enum CblasOrder { CblasRowMajor = 101 };
enum CblasTranspose { CblasNoTrans = 111, CblasTrans = 112 };
using CblasSgemm = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);

CblasSgemm find() {
  if (void* sym = ::dlsym(RTLD_DEFAULT, "cblas_sgemm")) return reinterpret_cast<CblasSgemm>(sym);
  for (const char* lib : {"libblas.so.3", "libopenblas.so.0"}) {
    // RTLD_NOLOAD: only a library this process already uses (the one LibTorch runs on).
    if (void* handle = ::dlopen(lib, RTLD_NOW | RTLD_NOLOAD))
      if (void* sym = ::dlsym(handle, "cblas_sgemm")) return reinterpret_cast<CblasSgemm>(sym);
  }
  return nullptr;
}

CblasSgemm cblas() {
  static const CblasSgemm fn = find();
  return fn;
}

void call(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  cblas()(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
          static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b,
          static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

}  // namespace

SgemmFn row_major_sgemm() { return cblas() ? &call : nullptr; }

namespace {
using OmpSetFn = void (*)(int);
using OmpGetFn = int (*)();
OmpSetFn omp_set() {
  static const auto fn = reinterpret_cast<OmpSetFn>(::dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  return fn;
}
OmpGetFn omp_get() {
  static const auto fn = reinterpret_cast<OmpGetFn>(::dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  return fn;
}
}  // namespace

SingleThreadedBlas::SingleThreadedBlas() {
  if (omp_set() && omp_get()) {
    previous_ = omp_get()();
    omp_set()(1);
  }
}

SingleThreadedBlas::~SingleThreadedBlas() {
  if (previous_ > 0) omp_set()(previous_);
}

}  // namespace gaggle::route::detail
