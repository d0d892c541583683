// The child side of spawn: everything between clone and execve. Internal to spawn.cpp.
#pragma once

#include <sys/types.h>

#include "daemon/spawn/spawn.hpp"

namespace cow::spawn::detail {

// What the child reads, and all it can reach: the parent fills it from a Plan before clone,
// with plain values and pointers into storage that stays put until clone returns. The child
// gets no Plan, so no container code (with its asserts, allocator and sanitizer hooks) can run
// between clone and exec, and what the child touches can be checked by reading this struct.
struct ChildPlan {
    int err_fd = -1;   // write end of the close-on-exec error pipe
    int fd_limit = 0;  // one above every fd kept: only those below are copied from ours
    int fd_bound = 0;  // the soft RLIMIT_NOFILE: where closing fd by fd stops (no close_range)
    int stdio[3] = {-1, -1, -1};    // -1: keep the daemon's
    const int* pass_fds = nullptr;  // become 3, 4, ...
    int npass = 0;
    int* lifted = nullptr;  // 3 + npass slots of scratch

    const char* cgroup_procs = nullptr;  // written with "0" when not born in the cgroup
    const char* cwd = nullptr;

    const Rlimit* rlimits = nullptr;
    int nrlimits = 0;
    int umask = -1;
    // oom_score_adj as decimal text, formatted by the parent; empty: leave it.
    char oom_score_adj[16] = {};
    int oom_score_adj_len = 0;

    bool set_ids = false;
    uid_t uid = 0;
    gid_t gid = 0;
    const gid_t* groups = nullptr;
    int ngroups = 0;
    bool no_new_privs = false;

    char* listen_pid_digits = nullptr;  // the child writes its pid here, or null
    const char* const* exec_paths = nullptr;
    int nexec_paths = 0;
    char* const* argv = nullptr;
    char* const* envp = nullptr;
};

// clone() entry point; arg is a ChildPlan. Never returns on success (execve); on failure writes
// a ChildError to err_fd and exits with 127.
int child_main(void* arg);

}  // namespace cow::spawn::detail
