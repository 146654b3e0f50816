#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "support/test_support.h"

using namespace gaggle::test;

TEST_CASE("keygen makes a key pair ssh-keygen accepts", "[cmd][keygen]") {
  TempDir dir;
  auto r = run_gaggle({"keygen", "-f", (dir / "id").string(), "-C", "alice@example.com"});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("SHA256:") && Catch::Contains("alice@example.com (ED25519)"));
  CHECK_THAT(r.err, Catch::Contains("namespaces=\"gaggle-bundle\" ssh-ed25519 AAAA"));
  struct stat st {};
  REQUIRE(::stat((dir / "id").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto y = run_command({"ssh-keygen", "-y", "-f", (dir / "id").string()});
  REQUIRE(y.exit_code == 0);
  std::string pub = read_text(dir / "id.pub");
  CHECK(y.out.substr(0, 80) == pub.substr(0, 80));
  auto l = run_command({"ssh-keygen", "-l", "-f", (dir / "id.pub").string()});
  CHECK_THAT(l.out, Catch::Contains(r.out.substr(0, r.out.find(' '))));
}

TEST_CASE("keygen refuses to overwrite and needs -f", "[cmd][keygen]") {
  TempDir dir;
  write_text(dir / "id", "precious");
  auto r = run_gaggle({"keygen", "-f", (dir / "id").string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("already exists"));
  CHECK(read_text(dir / "id") == "precious");
  CHECK(run_gaggle({"keygen"}).exit_code == 2);
  auto h = run_gaggle({"keygen", "--help"});
  CHECK(h.exit_code == 0);
  CHECK_THAT(h.out, Catch::Contains("Example:"));
}
