#pragma once
// What the CPU this process runs on can execute, asked once per process. The routing
// kernels compiled with __attribute__((target(...))) call these before taking a vector
// path, so one binary runs on any x86-64 and uses AVX2 where it is there.

namespace gaggle::route::detail {

// AVX2 (the 256-bit integer and compare instructions the top-k scan uses).
bool cpu_has_avx2();

// AVX2 and FMA together (the exp and dot-product kernels use fused multiply-add).
bool cpu_has_avx2_fma();

// AVX-512 Foundation (the 512-bit expert update and the packed score kernel).
bool cpu_has_avx512f();

}  // namespace gaggle::route::detail
