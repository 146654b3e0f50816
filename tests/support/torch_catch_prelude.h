#pragma once
// Force-included (-include) into every file of the torch test rooms, before anything else.
// LibTorch brings glog, and glog and Catch both define CHECK. Including glog here and
// dropping its CHECK lets Catch's definition stand in every file that follows, also in a
// unity build where one file's includes come before another's: glog's header is guarded,
// so nothing later can define CHECK again.
#include <c10/util/Logging.h>
