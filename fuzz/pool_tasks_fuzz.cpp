// libFuzzer target: a pool's pool.json (written by pull from what a hub or a static index
// serves) and a task file's JSONL lines must be rejected with an Error when malformed,
// never crash, hang, read out of bounds or let another exception out. The first byte
// picks the parser. Run with fuzz/run.sh pool_tasks.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "hub/pool.h"
#include "io/error.h"
#include "tasks/task_data.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    if (data[0] % 2 == 0)
      gaggle::hub::parse_pool(std::string(text), "fuzz");
    else
      gaggle::tasks::example_from_json_line(text, "fuzz");
  } catch (const gaggle::Error&) {
  }
  return 0;
}
