// Fork-exec by the hard rules of design §3.1. The parent flattens a Plan into plain arrays and
// pointers before cloning; the child (spawn_child.cpp) reads only those and only makes raw,
// async-signal-safe syscalls.
//
// We clone with CLONE_VM|CLONE_VFORK, as posix_spawn does, rather than fork: fork copies the
// daemon's page tables, so its cost grows with the daemon's size (bench/spawn_methods measures
// it), while a vfork-style child borrows the parent's memory and costs the same at any size.
// The parent stays suspended until the child execs or exits, so the error pipe has its answer
// the moment clone returns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sys/types.h>

namespace cow::spawn {

enum class Stage : std::int32_t {
    none = 0,
    clone,    // parent: clone() itself failed
    pipe,     // parent: could not create the error pipe
    signals,  // resetting dispositions or the mask
    setsid,
    cgroup,  // joining the worker's cgroup
    chdir,
    stdio,  // dup2 of stdin/stdout/stderr
    fds,    // placing passed fds (LISTEN_FDS) or closing the rest
    rlimits,
    umask,
    groups,      // setgroups
    gid,         // setresgid
    uid,         // setresuid
    verify_ids,  // the ids did not stick
    no_new_privs,
    oom_score,
    exec,
};
const char* to_string(Stage s);

// Written by the child to the close-on-exec pipe when a stage fails.
struct ChildError {
    std::int32_t stage;
    std::int32_t err;
};

struct Rlimit {
    int resource;
    std::uint64_t soft, hard;
};

struct Plan {
    // execve is tried on each candidate in turn (a PATH search done in the parent).
    std::vector<std::string> exec_paths;
    std::string display_path;  // what the user wrote (command[0]), for messages
    std::vector<char*> argv;   // null-terminated; the strings are owned by the caller
    std::vector<char*> envp;   // null-terminated; may contain listen_pid_slot
    const char* cwd = nullptr;
    const char* cgroup_procs = nullptr;  // "<cgroup>/cgroup.procs" to join before exec
    int cgroup_fd = -1;  // that cgroup's directory: born in it (clone3), cgroup_procs unused
    int stdin_fd = -1;   // -1: keep the daemon's
    int stdout_fd = -1;
    int stderr_fd = -1;
    std::vector<int> pass_fds;  // become fds 3, 4, ... (LISTEN_FDS order)
    // "LISTEN_PID=" followed by room for digits; the child writes its own pid in.
    char* listen_pid_slot = nullptr;
    std::size_t listen_pid_prefix = 0;  // strlen("LISTEN_PID=")

    bool set_ids = false;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
    std::vector<Rlimit> rlimits;
    int umask = -1;  // -1: inherit
    bool no_new_privs = false;
    int oom_score_adj = 0;
    bool set_oom_score_adj = false;

    // Filled by make_ready(): storage the child's flat view points into, so that the child
    // neither allocates nor reads a container.
    std::vector<int> scratch;             // where the child lifts fds it is about to place
    std::vector<const char*> exec_cstrs;  // exec_paths as C strings
};

struct Result {
    pid_t pid = -1;  // > 0 even when the child failed after clone (it must still be reaped)
    bool ok = false;
    Stage stage = Stage::none;
    int err = 0;
    std::string message;  // "exec /usr/bin/x: No such file or directory"
};

// Threads that may spawn at once, each with its own stack slot (0 .. kStackSlots-1); a slot
// must be used by one thread at a time. The loop thread uses slot 0.
inline constexpr int kStackSlots = 4;
// Whatever the outcome, the calling thread's signal mask is as it was and the parent holds the
// same fds as before; only a child's pid (Result::pid) is left for the caller to reap.
Result spawn(Plan& plan, int stack_slot = 0);
// Does spawn()'s allocations ahead (argv/envp terminators, the child's scratch and C strings),
// so that a helper thread's spawn allocates nothing and never grows a malloc arena of its own.
void make_ready(Plan& plan);

// Moves a long-lived fd out of the low range that every spawn copies (see spawn.cpp), closing
// the original. Returns the new fd, or the same one when there is no room above.
int park_high(int fd);

// Searches PATH the way execvp does, returning the candidates to try in order.
// A name containing '/' is used as given (relative to the child's cwd).
std::vector<std::string> exec_candidates(const std::string& file, const std::string& path_env);

}  // namespace cow::spawn
