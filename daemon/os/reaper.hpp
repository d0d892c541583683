// The only waitpid caller in the daemon (design §3.2).
#pragma once

#include <functional>
#include <vector>

#include <sys/types.h>

namespace cow {

// Reaps every child that has exited, looping until none is left or `max` were reaped: SIGCHLD
// coalesces, so one signal may stand for many exits. Returns how many were reaped; `max` means
// more may be waiting. The bound matters: workers that exit as fast as they are restarted
// (inside on_exit) would otherwise keep this loop, and the daemon's, busy forever.
int reap_all(const std::function<void(pid_t pid, int status)>& on_exit, int max = 1 << 30);

// Reaps those of `pids` that have exited, in order, until `stop()` says so (asked before each).
// waitpid(-1) finds the children of the thread that looks first, so children of other threads
// (the spawn crew's) can wait behind a storm of exits on the main thread's; this reaps each by
// pid. Returns how many pids were looked at.
std::size_t reap_each(const std::vector<pid_t>& pids,
                      const std::function<void(pid_t pid, int status)>& on_exit,
                      const std::function<bool()>& stop);

// Makes orphaned descendants reparent to us. PID 1 gets them anyway.
bool become_subreaper();

}  // namespace cow
