#pragma once
// The room name that route/'s errors carry (io/error.h), in one place so that the room's
// files can also be compiled together as one (GAGGLE_UNITY_BUILD).
namespace gaggle::route {

inline constexpr const char* kRoom = "route";

}  // namespace gaggle::route
