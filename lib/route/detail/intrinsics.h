#pragma once
// <immintrin.h> for the route kernels. GCC 12 warns inside its own AVX-512 headers
// (_mm512_undefined_* in the reductions and widening loads, a false alarm), and the
// diagnostic state at the header's own lines is what counts: every kernel file includes it
// through here, so that whichever comes first (also in a unity build) silences it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
