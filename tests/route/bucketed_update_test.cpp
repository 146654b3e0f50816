// The stacked factors the bucketed update gathers from (route/detail/bucketed_update.h):
// off the CPU a routed layer keeps its experts' factors stacked, and must not double the
// memory they take. (The update's values: routed_linear_test.cpp and the golden cases.)
#include "route/detail/bucketed_update.h"

#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <vector>

using namespace gaggle;
using route::detail::stack_in_place;
using route::detail::view_as_stacked;

TEST_CASE("stacked factors are a view where the experts lie back to back", "[route][bucketed_update]") {
  const at::Tensor stacked = at::randn({5, 4, 6});
  const at::Tensor view = view_as_stacked(stacked.unbind(0));
  REQUIRE(view.defined());
  CHECK(view.data_ptr() == stacked.data_ptr());
  CHECK(at::equal(view, stacked));
  // Experts 1 to 3 of a stacked tensor: back to back from an offset.
  const at::Tensor some = view_as_stacked(stacked.narrow(0, 1, 3).unbind(0));
  REQUIRE(some.defined());
  CHECK(some.data_ptr() == stacked[1].data_ptr());
  CHECK(at::equal(some, stacked.narrow(0, 1, 3)));
  // Not back to back: every other expert, the order reversed, transposed factors.
  CHECK_FALSE(view_as_stacked({stacked[0], stacked[2], stacked[4]}).defined());
  CHECK_FALSE(view_as_stacked({stacked[1], stacked[0]}).defined());
  CHECK_FALSE(view_as_stacked({stacked[0].t(), stacked[1].t()}).defined());
  CHECK_FALSE(view_as_stacked({}).defined());
  // stack_in_place keeps such a view and copies nothing.
  std::vector<at::Tensor> parts = stacked.unbind(0);
  CHECK(stack_in_place(parts).data_ptr() == stacked.data_ptr());
  CHECK(parts[2].data_ptr() == stacked[2].data_ptr());
}

TEST_CASE("separate factors are stacked once and then viewed from the stack", "[route][bucketed_update]") {
  std::vector<at::Tensor> parts;
  for (int e = 0; e < 4; ++e) parts.push_back(at::randn({3, 8}));
  const at::Tensor before = at::stack(parts);
  const at::Tensor stacked = stack_in_place(parts);
  CHECK(at::equal(stacked, before));
  for (std::size_t e = 0; e < parts.size(); ++e) {
    // Each part now lies in the stack (the originals can be freed): same values.
    CHECK(parts[e].is_alias_of(stacked));
    CHECK(at::equal(parts[e], before[static_cast<std::int64_t>(e)]));
  }
  // A second call finds them back to back and copies nothing.
  CHECK(stack_in_place(parts).data_ptr() == stacked.data_ptr());
}
