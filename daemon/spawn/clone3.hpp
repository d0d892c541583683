// clone3(CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP): the child is born inside its cgroup.
// Moving it there afterwards (writing cgroup.procs) takes cgroup_threadgroup_rwsem for
// writing, which waits out an RCU grace period: ~10 ms for every single respawn on the test
// VM, against 0.4 ms for a child born in place (bench/README.md). glibc 2.36 has no wrapper
// that runs a function on a new stack for clone3, so this is a few lines of assembly.
#pragma once

#include <sched.h>
#include <sys/types.h>

namespace cow::spawn::detail {

// ThreadSanitizer keeps per-thread state (clocks, trace) in our memory: a child sharing it
// would write there as the parent thread and corrupt it, reporting races that do not exist.
// Under TSan the child gets a copy of memory instead. Same semantics, only slower: the parent
// waits on the close-on-exec error pipe either way.
#if defined(__SANITIZE_THREAD__)
inline constexpr int kShareVm = 0;
#else
inline constexpr int kShareVm = CLONE_VM | CLONE_VFORK;
#endif
// Sharing the fd table is safe only while we are suspended (CLONE_VFORK) until the child has
// made it private: a parent that runs on would close the error pipe under the child.
inline constexpr int kShareFiles = kShareVm != 0 ? CLONE_FILES : 0;

// Runs fn(arg) in a child that shares our memory (we are suspended until it execs or exits),
// on the given stack, born in the cgroup whose directory fd is cgroup_fd. Returns the child's
// pid, or -errno: -ENOSYS/-E2BIG/-EINVAL mean "not supported here", use clone() instead.
long clone3_into_cgroup(int (*fn)(void*), void* arg, char* stack_base, unsigned long stack_size,
                        int cgroup_fd);

}  // namespace cow::spawn::detail
