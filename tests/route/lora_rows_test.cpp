// The one-pass expert update (route/detail/lora_rows.h) against the formula written out in
// double precision: out[t] = (started ? out[t] : base[t]) + w · B (A u[t]).
#include "route/detail/lora_rows.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "route/phatgoose.h"
#include "route/routed_linear.h"

using namespace gaggle;

namespace {

std::vector<float> random_values(std::size_t n, std::mt19937& gen) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(gen);
  return v;
}

// Sets the kernel's vector width for one test case and restores the default after it.
struct KernelWidth {
  explicit KernelWidth(route::detail::LoraRowsWidth width) { route::detail::set_lora_rows_width(width); }
  ~KernelWidth() { route::detail::set_lora_rows_width(route::detail::LoraRowsWidth::widest); }
  KernelWidth(const KernelWidth&) = delete;
  KernelWidth& operator=(const KernelWidth&) = delete;
};

}  // namespace

TEST_CASE("add_lora_rows adds w · B (A u) to base on a token's first update and to out after",
          "[route][lora_rows]") {
  const std::int64_t r = GENERATE(8, 16, 32);
  const std::int64_t d_in = GENERATE(8, 64);
  const std::int64_t d_out = GENERATE(8, 40, 48);  // 40: the kernel's eight-wide tail
  if (!route::detail::lora_rows_supported(r, d_in, d_out)) {
    WARN("no AVX2 and FMA on this CPU: the one-pass kernel is not used here");
    return;
  }
  const bool pre_transposed = GENERATE(false, true);
  // Both vector widths where this CPU has AVX-512 (d_in 64 with d_out 48: a 32-wide chunk
  // and the 16-wide tail); elsewhere the 256-bit kernel twice.
  const auto width = GENERATE(route::detail::LoraRowsWidth::widest, route::detail::LoraRowsWidth::avx2);
  const KernelWidth kernel_width(width);
  INFO("r " << r << ", d_in " << d_in << ", d_out " << d_out << (pre_transposed ? ", Bt given" : "")
            << (width == route::detail::LoraRowsWidth::avx2 ? ", AVX2 only" : ", widest"));
  std::mt19937 gen(static_cast<unsigned>(r * 1000 + d_in * 10 + d_out));
  const std::int64_t tokens = 60;
  auto u = random_values(tokens * d_in, gen), base = random_values(tokens * d_out, gen);
  auto a = random_values(r * d_in, gen), b = random_values(d_out * r, gen);
  std::vector<float> bt(r * d_out);
  route::detail::transpose_lora_b(b.data(), d_out, r, bt.data());
  for (std::int64_t c = 0; c < d_out; ++c)
    for (std::int64_t j = 0; j < r; ++j) REQUIRE(bt[j * d_out + c] == b[c * r + j]);

  // 1-13 rows cover every tile remainder and both products with B (dot products below
  // kLoraTransposeRows, Bᵀ from it on); 37 several whole tiles. Tokens scattered, not
  // ascending; every third token already holds an earlier update.
  for (const std::int64_t rows : {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 37}) {
    std::vector<std::int64_t> token(rows);
    std::vector<float> weight(rows);
    for (std::int64_t i = 0; i < rows; ++i) {
      token[i] = (i * 23 + 5) % tokens;
      weight[i] = 0.25f + 0.1f * static_cast<float>(i % 5) - (i % 4 == 3 ? 0.9f : 0.0f);
    }
    std::vector<float> out(tokens * d_out, 7.0f);
    std::vector<std::uint8_t> started(tokens, 0);
    for (std::int64_t t = 0; t < tokens; t += 3) started[t] = 1;
    route::detail::LoraRowsTarget target;
    target.a = a.data(), target.b = b.data(), target.bt = pre_transposed ? bt.data() : nullptr;
    target.r = r, target.d_in = d_in, target.d_out = d_out;
    target.u = u.data(), target.base = base.data(), target.out = out.data(), target.started = started.data();
    route::detail::add_lora_rows(target, token.data(), weight.data(), rows);

    double worst = 0;
    std::vector<bool> touched(tokens, false);
    for (std::int64_t i = 0; i < rows; ++i) {
      const std::int64_t t = token[i];
      touched[t] = true;
      CHECK(started[t] == 1);
      std::vector<double> h(r, 0.0);
      for (std::int64_t j = 0; j < r; ++j)
        for (std::int64_t c = 0; c < d_in; ++c) h[j] += static_cast<double>(a[j * d_in + c]) * u[t * d_in + c];
      for (std::int64_t c = 0; c < d_out; ++c) {
        double want = t % 3 == 0 ? 7.0 : base[t * d_out + c];
        for (std::int64_t j = 0; j < r; ++j) want += weight[i] * static_cast<double>(b[c * r + j]) * h[j];
        worst = std::max(worst, std::abs(want - out[t * d_out + c]) / (1.0 + std::abs(want)));
      }
    }
    CHECK(worst < 1e-5);
    for (std::int64_t t = 0; t < tokens; ++t)  // rows nobody routed here are left alone
      if (!touched[t]) {
        CHECK(started[t] == (t % 3 == 0 ? 1 : 0));
        for (std::int64_t c = 0; c < d_out; ++c) REQUIRE(out[t * d_out + c] == 7.0f);
      }
  }
}

TEST_CASE("the routed layer's one-pass update matches the generic path with two threads, few or many experts",
          "[route][lora_rows]") {
  at::NoGradGuard no_grad;
  const int previous_threads = at::get_num_threads();
  at::set_num_threads(2);  // the workers' thread-local buffers and the shared transposed B
  // 3 and 40 experts: token blocks, with B transposed once per call for busy experts.
  // 400: so few rows per expert that the experts are split among the threads, each
  // token's row written by the owner of its lowest expert and partial rows folded in.
  const std::int64_t n = GENERATE(3, 40, 400), r = 16, d_in = 64, d_out = 56, t = 900;
  const int k = GENERATE(1, 2, 3);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11 + n);
  auto A = at::randn({n, r, d_in}, gen, at::kFloat) * 0.3;
  auto B = at::randn({n, d_out, r}, gen, at::kFloat) * 0.3;
  auto keys = route::phatgoose_keys(at::randn({n, d_in}, gen, at::kFloat));
  auto u = at::randn({t, d_in}, gen, at::kFloat);
  auto base = at::randn({t, d_out}, gen, at::kFloat);
  route::RoutedLinearOptions options;
  options.top_k = k;
  route::RoutedLinear fast(A, B, keys, options);
  options.force_generic = true;
  route::RoutedLinear generic(A, B, keys, options);
  auto y = fast.apply(u, base);
  auto want = generic.apply(u, base);
  CHECK((y - want).abs().max().item<double>() < 1e-5);
  CHECK(at::equal(y, fast.apply(u, base)));  // deterministic
  at::set_num_threads(previous_threads);
}

TEST_CASE("bfloat16 factors give exactly what float32 factors of the same values give",
          "[route][lora_rows][bf16]") {
  const std::int64_t r = 16, d_in = 64, d_out = GENERATE(40, 48);
  if (!route::detail::lora_rows_supported(r, d_in, d_out)) {
    WARN("no AVX2 and FMA on this CPU: the one-pass kernel is not used here");
    return;
  }
  // d_out 48 takes the 512-bit kernel where the CPU has AVX-512 (widened by its own loads).
  const auto width = GENERATE(route::detail::LoraRowsWidth::widest, route::detail::LoraRowsWidth::avx2);
  const KernelWidth kernel_width(width);
  std::mt19937 gen(static_cast<unsigned>(d_out));
  const std::int64_t tokens = 50;
  auto u = random_values(tokens * d_in, gen), base = random_values(tokens * d_out, gen);
  // bfloat16 bits by truncation (any 16 bits are a valid bfloat16), and the floats they
  // widen to, computed here by shifting, not by the kernel's own loads.
  auto to_bf16 = [](const std::vector<float>& v, std::vector<float>& widened) {
    std::vector<std::uint16_t> bits(v.size());
    widened.resize(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::uint32_t word;
      std::memcpy(&word, &v[i], 4);
      bits[i] = static_cast<std::uint16_t>(word >> 16);
      word = static_cast<std::uint32_t>(bits[i]) << 16;
      std::memcpy(&widened[i], &word, 4);
    }
    return bits;
  };
  std::vector<float> a, b;
  const auto a16 = to_bf16(random_values(r * d_in, gen), a);
  const auto b16 = to_bf16(random_values(d_out * r, gen), b);
  std::vector<float> bt(r * d_out), bt16(r * d_out);
  route::detail::transpose_lora_b(b.data(), d_out, r, bt.data());
  route::detail::transpose_lora_b(b16.data(), d_out, r, bt16.data());
  REQUIRE(bt == bt16);

  for (const std::int64_t rows : {1, 3, 5, 8, 13, 37}) {  // dot products with B, then Bᵀ
    std::vector<std::int64_t> token(rows);
    std::vector<float> weight(rows);
    for (std::int64_t i = 0; i < rows; ++i) {
      token[i] = (i * 17 + 3) % tokens;
      weight[i] = 0.5f - 0.1f * static_cast<float>(i % 7);
    }
    auto run = [&](bool sixteen) {
      std::vector<float> out(tokens * d_out, 3.0f);
      std::vector<std::uint8_t> started(tokens, 0);
      route::detail::LoraRowsTarget target;
      if (sixteen)
        target.a16 = a16.data(), target.b16 = b16.data();
      else
        target.a = a.data(), target.b = b.data();
      target.r = r, target.d_in = d_in, target.d_out = d_out;
      target.u = u.data(), target.base = base.data(), target.out = out.data(), target.started = started.data();
      route::detail::add_lora_rows(target, token.data(), weight.data(), rows);
      return out;
    };
    const auto want = run(false);
    const auto got = run(true);
    CHECK(got == want);
    CHECK(got != std::vector<float>(tokens * d_out, 3.0f));
  }
}

TEST_CASE("the routed layer takes bfloat16 factors: the float32 result of the rounded factors, on every path",
          "[route][lora_rows][bf16]") {
  at::NoGradGuard no_grad;
  const int previous_threads = at::get_num_threads();
  at::set_num_threads(2);
  const std::int64_t n = GENERATE(3, 40, 400), r = 16, d_in = 64, d_out = 56, t = 900;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(23 + n);
  auto A16 = (at::randn({n, r, d_in}, gen, at::kFloat) * 0.3).to(at::kBFloat16);
  auto B16 = (at::randn({n, d_out, r}, gen, at::kFloat) * 0.3).to(at::kBFloat16);
  auto keys = route::phatgoose_keys(at::randn({n, d_in}, gen, at::kFloat));
  auto u = at::randn({t, d_in}, gen, at::kFloat);
  auto base = at::randn({t, d_out}, gen, at::kFloat);
  route::RoutedLinearOptions options;
  route::RoutedLinear sixteen(A16, B16, keys, options);
  route::RoutedLinear thirty_two(A16.to(at::kFloat), B16.to(at::kFloat), keys, options);
  options.force_generic = true;
  route::RoutedLinear generic(A16, B16, keys, options);  // LibTorch ops widen the factors
  auto y = sixteen.apply(u, base);
  CHECK(y.scalar_type() == at::kFloat);
  if (route::detail::lora_rows_supported(r, d_in, d_out))
    CHECK(at::equal(y, thirty_two.apply(u, base)));  // the same kernel, the same float32 arithmetic
  CHECK((y - generic.apply(u, base)).abs().max().item<double>() < 1e-5);
  CHECK((y - base).abs().max().item<double>() > 0.1);  // the update is there
  at::set_num_threads(previous_threads);
}
