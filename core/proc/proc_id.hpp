// A process named by pid and start time: a pid alone may be reused once the process is reaped,
// pid and start time together may not.
#pragma once

#include <cstdint>

#include <sys/types.h>

namespace cow::proc {

struct ProcId {
    pid_t pid = 0;
    std::uint64_t starttime = 0;  // clock ticks since boot, field 22 of /proc/PID/stat

    bool operator==(const ProcId&) const = default;
};

}  // namespace cow::proc
