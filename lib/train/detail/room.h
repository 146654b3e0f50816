#pragma once
// The room name that train/'s errors carry (io/error.h), in one place so that the room's
// files can also be compiled together as one (GAGGLE_UNITY_BUILD).
namespace gaggle::train {

inline constexpr const char* kRoom = "train";

}  // namespace gaggle::train
