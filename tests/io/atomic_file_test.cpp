#include "io/atomic_file.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "io/error.h"
#include "io/json_file.h"
#include "io/sha256.h"
#include "support/test_support.h"

#include <nlohmann/json.hpp>

using namespace gaggle;
namespace fs = std::filesystem;

TEST_CASE("atomic file writes replace whole files and keep modes", "[io][atomic_file]") {
  test::TempDir dir;
  io::write_file_atomic(dir / "a.txt", std::string_view("first"));
  io::write_file_atomic(dir / "a.txt", std::string_view("second"));
  CHECK(io::read_file(dir / "a.txt") == "second");
  io::write_file_atomic(dir / "key", std::string_view("secret"), 0600);
  struct stat st {};
  ::stat((dir / "key").c_str(), &st);
  CHECK((st.st_mode & 0777) == 0600);
  // No temporaries are left behind.
  int entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir.path())) ++entries;
  CHECK(entries == 2);
}

TEST_CASE("an uncommitted writer leaves the old file intact", "[io][atomic_file]") {
  test::TempDir dir;
  io::write_file_atomic(dir / "a.txt", std::string_view("old"));
  {
    io::AtomicFileWriter w(dir / "a.txt");
    w.write(std::string_view("half of the new"));
    // destroyed without commit(): as if the process died mid-write
  }
  CHECK(io::read_file(dir / "a.txt") == "old");
  int entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir.path())) ++entries;
  CHECK(entries == 1);
}

TEST_CASE("atomic directories appear whole or not at all", "[io][atomic_file]") {
  test::TempDir dir;
  {
    io::AtomicDirectory d(dir / "bundle");
    io::write_file_atomic(d.path() / "x", std::string_view("1"));
  }
  CHECK_FALSE(fs::exists(dir / "bundle"));
  {
    io::AtomicDirectory d(dir / "bundle");
    io::write_file_atomic(d.path() / "x", std::string_view("1"));
    d.commit();
  }
  CHECK(io::read_file(dir / "bundle" / "x") == "1");
  {
    io::AtomicDirectory d(dir / "bundle");
    io::write_file_atomic(d.path() / "y", std::string_view("2"));
    try {
      d.commit();
      FAIL("expected exists");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::exists);
    }
    d.commit(/*replace=*/true);
  }
  CHECK_FALSE(fs::exists(dir / "bundle" / "x"));
  CHECK(io::read_file(dir / "bundle" / "y") == "2");
}

TEST_CASE("read errors name the path", "[io][atomic_file]") {
  try {
    io::read_file("/nonexistent/file.json");
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::not_found);
    CHECK_THAT(e.what(), Catch::Contains("/nonexistent/file.json"));
  }
}

TEST_CASE("sha256 matches the FIPS test vectors", "[io][sha256]") {
  CHECK(io::sha256_hex(std::string_view("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(io::sha256_hex(std::string_view("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  test::TempDir dir;
  io::write_file_atomic(dir / "abc", std::string_view("abc"));
  CHECK(io::sha256_file_hex(dir / "abc") == io::sha256_hex(std::string_view("abc")));
  io::Sha256 h;
  h.update(std::string_view("a"));
  h.update(std::string_view("bc"));
  CHECK(h.finish_hex() == io::sha256_hex(std::string_view("abc")));
}

TEST_CASE("JSON errors name the file and the byte", "[io][json]") {
  test::TempDir dir;
  test::write_text(dir / "bad.json", "{\"a\": [1, 2,}");
  CHECK_THROWS_WITH(io::read_json_file(dir / "bad.json"), Catch::Contains("bad.json: invalid JSON (byte"));
  io::write_json_file_atomic(dir / "good.json", nlohmann::json{{"a", 1}});
  CHECK(io::read_json_file(dir / "good.json")["a"] == 1);
}
