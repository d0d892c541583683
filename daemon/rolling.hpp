// The state of one rolling restart (see Supervisor::start_roll); shared by supervisor.cpp,
// which owns rolls, and rolling.cpp, which advances them.
#pragma once

#include <deque>
#include <map>

#include "daemon/supervisor.hpp"

namespace cow {

struct Supervisor::Roll {
    const Pool* pool;
    std::deque<std::uint64_t> queue;  // worker ids not started yet
    struct InFlight {
        std::uint64_t generation;
        std::uint64_t roll_failures;
        pid_t old_pid;
    };
    std::map<std::uint64_t, InFlight> inflight;
    int batch;
    int total;
    int done = 0;
    std::string failed;
    RollCallbacks cb;
};

}  // namespace cow
