// The child side of spawn: everything between clone and execve. Internal to spawn.cpp.
#pragma once

#include "daemon/spawn.hpp"

namespace cow::spawn::detail {

struct ChildArgs {
    Plan* plan;
    int err_fd;  // write end of the close-on-exec error pipe
};

// clone() entry point. Never returns on success (execve); on failure writes a ChildError to
// err_fd and exits with 127.
int child_main(void* arg);

}  // namespace cow::spawn::detail
