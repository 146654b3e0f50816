#pragma once
// The room name that eval/'s errors carry (io/error.h), in one place so that the room's
// files can also be compiled together as one (GAGGLE_UNITY_BUILD).
namespace gaggle::eval {

inline constexpr const char* kRoom = "eval";

}  // namespace gaggle::eval
