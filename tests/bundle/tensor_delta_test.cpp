// Sparse tensor deltas (bundle/tensor_delta.h): bit-exact round trips, offered only when
// smaller, and malformed or mismatched deltas refused with the place named.
#include <catch2/catch.hpp>

#include <cstring>

#include "bundle/tensor_delta.h"
#include "io/error.h"
#include "io/sha256.h"

using namespace gaggle;

namespace {

std::string floats(const std::vector<float>& v) {
  std::string out(v.size() * sizeof(float), '\0');
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

}  // namespace

TEST_CASE("a sparse delta rebuilds the new tensor bit for bit", "[bundle][delta]") {
  std::vector<float> a(1000), b;
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = 0.001f * static_cast<float>(i) - 0.3f;
  b = a;
  b[0] = -0.0f;                                         // a sign bit alone
  b[17] = std::nextafter(b[17], 1.0f);                  // one ulp
  b[999] = 42.0f;
  const std::string base = floats(a), target = floats(b), sha = io::sha256_hex(base);
  auto delta = bundle::encode_sparse_delta(base, sha, target, 4, target.size() / 2);
  REQUIRE(delta);
  CHECK(delta->size() == 8 + 64 + 4 + 8 + 8 + 3 * (4 + 4));
  const auto named = bundle::sparse_delta_base(*delta, "d");
  CHECK(named.sha256 == sha);
  CHECK(named.size == base.size());
  CHECK(bundle::apply_sparse_delta(*delta, base, "d") == target);
  // Equal tensors: an empty delta.
  auto none = bundle::encode_sparse_delta(base, sha, base, 4, base.size());
  REQUIRE(none);
  CHECK(bundle::apply_sparse_delta(*none, base, "d") == base);
}

TEST_CASE("a delta is offered only when it is smaller than the limit", "[bundle][delta]") {
  std::vector<float> a(100, 1.0f), b(100, 2.0f);  // every element changed
  const std::string base = floats(a), sha = io::sha256_hex(base);
  CHECK_FALSE(bundle::encode_sparse_delta(base, sha, floats(b), 4, base.size() / 2));
  CHECK_FALSE(bundle::encode_sparse_delta(base, sha, floats(b).substr(4), 4, base.size()));  // sizes differ
  CHECK_FALSE(bundle::encode_sparse_delta(base, sha, floats(b), 3, base.size() * 4));        // no such element size
}

TEST_CASE("malformed or mismatched deltas are refused, naming the part", "[bundle][delta]") {
  std::vector<float> a(16, 0.5f), b = a;
  b[3] = 1.5f;
  b[9] = 2.5f;
  const std::string base = floats(a), sha = io::sha256_hex(base);
  const auto encoded = bundle::encode_sparse_delta(base, sha, floats(b), 4, 1000);
  REQUIRE(encoded);
  const std::string& good = *encoded;
  constexpr std::size_t kIndices = 8 + 64 + 4 + 8 + 8;  // where the indices start
  auto err = [](const std::string& delta, const std::string& base_bytes) {
    try {
      bundle::apply_sparse_delta(delta, base_bytes, "F.parts/x.delta");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK_THAT(err("GGLDELT2" + good.substr(8), base), Catch::Contains("F.parts/x.delta") && Catch::Contains("header"));
  CHECK_THAT(err(good.substr(0, good.size() - 1), base), Catch::Contains("length"));
  std::string swapped = good;  // indices 3, 9 -> 9, 3
  std::swap(swapped[kIndices], swapped[kIndices + 4]);
  CHECK_THAT(err(swapped, base), Catch::Contains("increasing"));
  std::string outside = good;
  outside[kIndices + 4] = 16;  // index 16 of 16 elements
  CHECK_THAT(err(outside, base), Catch::Contains("increasing within the tensor"));
  std::string upper = good;
  upper[8] = 'A';
  CHECK_THAT(err(upper, base), Catch::Contains("lowercase hex"));
  std::string other = base;
  other[0] ^= 1;
  CHECK_THAT(err(good, other), Catch::Contains("does not match") && Catch::Contains(sha));
  CHECK_THAT(err(good, base.substr(4)), Catch::Contains("does not match"));
  CHECK(err(good, base) == "accepted");
}
