// The only waitpid caller in the daemon (design §3.2).
#pragma once

#include <functional>

#include <sys/types.h>

namespace cow {

// Reaps every child that has exited, looping until none is left: SIGCHLD coalesces, so one
// signal may stand for many exits. Returns how many were reaped.
int reap_all(const std::function<void(pid_t pid, int status)>& on_exit);

// Makes orphaned descendants reparent to us. PID 1 gets them anyway.
bool become_subreaper();

}  // namespace cow
