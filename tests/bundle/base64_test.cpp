#include <catch2/catch.hpp>

#include "bundle/base64.h"

using namespace gaggle::bundle;

TEST_CASE("base64 follows RFC 4648's test vectors", "[bundle][base64]") {
  const char* cases[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                            {"foobar", "Zm9vYmFy"}};
  for (auto& c : cases) {
    CHECK(base64_encode(c[0]) == c[1]);
    CHECK(base64_decode(c[1]) == std::string(c[0]));
  }
  CHECK(base64_encode("f", false) == "Zg");
  CHECK(base64_decode("Zg") == std::string("f"));
}

TEST_CASE("base64 decoding is strict", "[bundle][base64]") {
  CHECK_FALSE(base64_decode("Zm9v!"));
  CHECK_FALSE(base64_decode("Z"));
  CHECK_FALSE(base64_decode("Zm 9v"));
  CHECK_FALSE(base64_decode("Zh=="));  // non-zero leftover bits
  CHECK_FALSE(base64_decode("Zm9v="));
  CHECK(base64_decode_wrapped("Zm9v\nYmFy\n") == std::string("foobar"));
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  CHECK(base64_decode(base64_encode(all)) == all);
  CHECK(wrap_lines("abcdef", 4) == "abcd\nef\n");
}
