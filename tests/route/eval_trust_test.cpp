// `gaggle eval --pool` applies the pool's one rule for trust (hub/pool_trust.h): the trust
// file the pool was pulled with, or --trust; a foreign trust file or a tampered tensor is
// refused before anything is scored.
#include <catch2/catch.hpp>

#include "bundle/keys.h"
#include "route/world.h"
#include "support/test_support.h"

using namespace gaggle;
namespace fs = std::filesystem;
using gaggle::test::World;

TEST_CASE("gaggle eval --pool verifies against the pool's trust file or --trust, and refuses a tampered tensor",
          "[route][eval][trust][cli]") {
  World w(2, false, /*with_tokenizer=*/true, {}, /*rank=*/2);  // eval stacks a pool of one rank
  const fs::path tasks = w.dir / "task.jsonl";
  test::write_text(tasks, R"({"input": "is this good?", "choices": ["yes", "no"], "label": 0})"
                          "\n"
                          R"({"input": "is this bad?", "choices": ["yes", "no"], "label": 1})"
                          "\n");
  auto eval = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"eval", "--base", w.base.string(), "--pool", w.pool.string(), "--routers",
                                     "merged", "--tasks", tasks.string(), "-q"};
    args.insert(args.end(), extra.begin(), extra.end());
    return test::run_gaggle(args);
  };
  auto own = eval({});
  INFO(own.err);
  CHECK(own.exit_code == 0);
  CHECK_THAT(own.out, Catch::Contains("Merged"));

  // Another signer's trust file: nobody in this pool is trusted.
  const fs::path bob_key = w.dir / "bob", bob_trust = w.dir / "bob_trust";
  auto bob = bundle::generate_ed25519_keypair(bob_key, "bob@example.com");
  const std::string openssh = bob.to_openssh();
  test::write_text(bob_trust, "bob@example.com namespaces=\"gaggle-bundle\" " + openssh.substr(0, openssh.find(' ', 12)) + "\n");
  auto foreign = eval({"--trust", bob_trust.string()});
  CHECK(foreign.exit_code == 1);
  CHECK_THAT(foreign.err, Catch::Contains("e0"));
  auto explicit_trust = eval({"--trust", w.trust.string()});
  CHECK(explicit_trust.exit_code == 0);

  // One flipped bit in a tensor after signing.
  const fs::path adapter = w.pool / "bundles/e1/1.0.0/adapter.safetensors";
  std::string bytes = test::read_text(adapter);
  bytes[bytes.size() - 5] = static_cast<char>(bytes[bytes.size() - 5] ^ 0x01);
  test::write_text(adapter, bytes);
  auto tampered = eval({});
  CHECK(tampered.exit_code == 1);
  CHECK_THAT(tampered.err, Catch::Contains("e1"));

  auto no_pool = test::run_gaggle({"eval", "--base", w.base.string(), "--trust", w.trust.string(), "--tasks",
                                   tasks.string(), "-q"});
  CHECK(no_pool.exit_code == 2);
  CHECK_THAT(no_pool.err, Catch::Contains("--trust verifies a --pool"));
}
