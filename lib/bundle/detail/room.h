#pragma once
// The room name that bundle/'s errors carry (io/error.h), in one place so that the room's
// files can also be compiled together as one (GAGGLE_UNITY_BUILD).
namespace gaggle::bundle {

inline constexpr const char* kRoom = "bundle";

}  // namespace gaggle::bundle
