// Code between clone and execve. It runs on a borrowed stack in the parent's address space
// (CLONE_VM), so it must not allocate, lock, touch errno-dependent libc state or call anything
// an interceptor might wrap. It therefore uses the raw syscall() entry point only, and reads
// nothing but the ChildPlan the parent filled before clone.
//
// Permitted calls: syscall(2) with SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_setsid,
// SYS_unshare, SYS_chdir, SYS_fcntl, SYS_dup3, SYS_close_range, SYS_close, SYS_prlimit64,
// SYS_umask, SYS_setgroups, SYS_setresgid, SYS_setresuid, SYS_getresuid, SYS_getresgid, SYS_prctl,
// SYS_openat, SYS_write, SYS_getpid, SYS_execve, SYS_exit_group.
// Nothing else. The file is built without sanitizers for the same reason.
//
// The steps run in child_main's order; each one that fails reports its Stage and exits.
#include "daemon/spawn/spawn_child.hpp"

#include <cerrno>
#include <climits>

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/spawn/clone3.hpp"

namespace cow::spawn::detail {
namespace {

// The kernel's struct sigaction for rt_sigaction (not glibc's).
struct KernelSigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    unsigned long mask;
};

[[noreturn]] void fail(int err_fd, Stage stage, int err) {
    ChildError e{static_cast<std::int32_t>(stage), static_cast<std::int32_t>(err)};
    const char* p = reinterpret_cast<const char*>(&e);
    std::size_t left = sizeof e;
    while (left > 0) {
        long n = syscall(SYS_write, err_fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    syscall(SYS_exit_group, 127);
    __builtin_unreachable();
}

// Every argument register is set: prctl(PR_SET_NO_NEW_PRIVS) rejects garbage in arg 5.
long sys(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0) {
    long r;
    do {
        r = syscall(nr, a, b, c, d, e);
    } while (r < 0 && errno == EINTR);
    return r;
}

long ptr(const void* p) {
    return reinterpret_cast<long>(p);
}

// We may share the daemon's fd table (kShareFiles): make a private copy of the fds we keep,
// those below fd_limit, before touching any. The rest are never copied at all.
void unshare_fds(const ChildPlan& p) {
    if (kShareFiles == 0) return;
    if (sys(SYS_close_range, p.fd_limit, ~0U, CLOSE_RANGE_UNSHARE) == 0) return;
    // Before Linux 5.9 there is no close_range: copy the whole table; close_the_rest empties it.
    if (sys(SYS_unshare, CLONE_FILES) < 0) fail(p.err_fd, Stage::fds, errno);
}

// Default dispositions first, while every signal is still blocked: a handler of the daemon must
// never run in this child, which shares the daemon's memory. SIG_IGN would also survive execve
// (the daemon ignores SIGPIPE).
void reset_signals(const ChildPlan& p) {
    KernelSigaction dfl{SIG_DFL, 0, nullptr, 0};
    for (int sig = 1; sig < _NSIG; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof(unsigned long));
    }
    unsigned long empty_mask = 0;
    if (sys(SYS_rt_sigprocmask, SIG_SETMASK, ptr(&empty_mask), 0, sizeof empty_mask) < 0)
        fail(p.err_fd, Stage::signals, errno);
}

// Own session: the daemon's terminal signals never reach the workers, and the worker's process
// group is its pid, which stop signals reach as a whole.
void set_session(const ChildPlan& p) {
    if (sys(SYS_setsid) < 0) fail(p.err_fd, Stage::setsid, errno);
}

// Join the worker's cgroup before anything can fork, so no descendant is ever outside it.
void join_cgroup(const ChildPlan& p) {
    if (!p.cgroup_procs) return;
    long fd = sys(SYS_openat, AT_FDCWD, ptr(p.cgroup_procs), O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail(p.err_fd, Stage::cgroup, errno);
    if (sys(SYS_write, fd, ptr("0"), 1) < 0) fail(p.err_fd, Stage::cgroup, errno);
    syscall(SYS_close, fd);
}

void change_dir(const ChildPlan& p) {
    if (p.cwd && sys(SYS_chdir, ptr(p.cwd)) < 0) fail(p.err_fd, Stage::chdir, errno);
}

// Places stdio at 0..2 and passed fds at 3.. . Sources may sit inside the target range, so
// first lift every source and the error pipe above it, then dup into place. Returns where the
// error pipe is now.
int wire_fds(const ChildPlan& p) {
    int err_fd = p.err_fd;
    const int floor = 3 + p.npass;
    if (err_fd < floor) {
        long moved = sys(SYS_fcntl, err_fd, F_DUPFD_CLOEXEC, floor);
        if (moved < 0) fail(err_fd, Stage::fds, errno);
        err_fd = static_cast<int>(moved);
    }
    for (int i = 0; i < floor; ++i) {
        const int src = i < 3 ? p.stdio[i] : p.pass_fds[i - 3];
        p.lifted[i] = -1;
        if (src < 0) continue;
        long moved = sys(SYS_fcntl, src, F_DUPFD_CLOEXEC, floor);
        if (moved < 0) fail(err_fd, i < 3 ? Stage::stdio : Stage::fds, errno);
        p.lifted[i] = static_cast<int>(moved);
    }
    for (int i = 0; i < floor; ++i) {
        if (p.lifted[i] < 0) continue;  // keep the daemon's fd (stdio inherit)
        if (sys(SYS_dup3, p.lifted[i], i, 0) < 0)
            fail(err_fd, i < 3 ? Stage::stdio : Stage::fds, errno);
    }
    return err_fd;
}

// Closes [from, to]. close_range is Linux 5.9+; without it (ENOSYS, or EPERM from a seccomp
// filter that predates it) each fd is closed in turn up to the soft RLIMIT_NOFILE the parent
// read: no fd can be opened at or above it, and cowherd never lowers it. That costs a system
// call per possible fd, on such kernels only. close is not retried: Linux frees the fd even
// when close reports EINTR.
void close_fds(const ChildPlan& p, int err_fd, unsigned from, unsigned to) {
    if (from > to) return;
    if (sys(SYS_close_range, from, to, 0) == 0) return;
    if (errno != ENOSYS && errno != EPERM) fail(err_fd, Stage::fds, errno);
    const unsigned end = to < static_cast<unsigned>(p.fd_bound) ? to + 1 : p.fd_bound;
    for (unsigned fd = from; fd < end; ++fd)
        syscall(SYS_close, fd);
}

// Closes everything but what wire_fds placed and the error pipe, which closes itself on exec.
void close_the_rest(const ChildPlan& p, int err_fd) {
    const unsigned floor = 3 + static_cast<unsigned>(p.npass);
    if (static_cast<unsigned>(err_fd) > floor) close_fds(p, err_fd, floor, err_fd - 1);
    close_fds(p, err_fd, err_fd + 1, ~0U);
}

void set_rlimits(const ChildPlan& p, int err_fd) {
    for (int i = 0; i < p.nrlimits; ++i) {
        struct {
            unsigned long long cur, max;
        } lim{p.rlimits[i].soft, p.rlimits[i].hard};
        if (sys(SYS_prlimit64, 0, p.rlimits[i].resource, ptr(&lim), 0) < 0)
            fail(err_fd, Stage::rlimits, errno);
    }
}

void set_umask(const ChildPlan& p) {
    if (p.umask >= 0) syscall(SYS_umask, p.umask);
}

void set_oom_score(const ChildPlan& p, int err_fd) {
    if (p.oom_score_adj_len == 0) return;
    long fd = sys(SYS_openat, AT_FDCWD, ptr("/proc/self/oom_score_adj"), O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail(err_fd, Stage::oom_score, errno);
    if (sys(SYS_write, fd, ptr(p.oom_score_adj), p.oom_score_adj_len) < 0)
        fail(err_fd, Stage::oom_score, errno);
    syscall(SYS_close, fd);
}

// Groups, then gid, then uid: once uid changes we may no longer change the others.
void drop_privileges(const ChildPlan& p, int err_fd) {
    if (!p.set_ids) return;
    if (sys(SYS_setgroups, p.ngroups, ptr(p.groups)) < 0) fail(err_fd, Stage::groups, errno);
    if (sys(SYS_setresgid, p.gid, p.gid, p.gid) < 0) fail(err_fd, Stage::gid, errno);
    if (sys(SYS_setresuid, p.uid, p.uid, p.uid) < 0) fail(err_fd, Stage::uid, errno);
    // Filled by the kernel; initialised because clang cannot see through a raw syscall.
    uid_t r = 0, e = 0, s = 0;
    gid_t gr = 0, ge = 0, gs = 0;
    if (sys(SYS_getresuid, ptr(&r), ptr(&e), ptr(&s)) < 0 ||
        sys(SYS_getresgid, ptr(&gr), ptr(&ge), ptr(&gs)) < 0 || r != p.uid || e != p.uid ||
        s != p.uid || gr != p.gid || ge != p.gid || gs != p.gid)
        fail(err_fd, Stage::verify_ids, EPERM);
}

void set_no_new_privs(const ChildPlan& p, int err_fd) {
    if (p.no_new_privs && sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0) < 0)
        fail(err_fd, Stage::no_new_privs, errno);
}

// LISTEN_PID must name the process that reads it, known only here: decimal, in place.
void write_listen_pid(const ChildPlan& p) {
    if (!p.listen_pid_digits) return;
    long pid = syscall(SYS_getpid);
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = static_cast<char>('0' + pid % 10);
        pid /= 10;
    } while (pid > 0 && n < 23);
    for (int i = 0; i < n; ++i)
        p.listen_pid_digits[i] = tmp[n - 1 - i];
    p.listen_pid_digits[n] = '\0';
}

// Like execvp: try each PATH candidate; EACCES is remembered in preference to ENOENT.
[[noreturn]] void exec_command(const ChildPlan& p, int err_fd) {
    int exec_err = ENOENT;
    bool saw_eacces = false;
    for (int i = 0; i < p.nexec_paths; ++i) {
        syscall(SYS_execve, p.exec_paths[i], p.argv, p.envp);
        int e = errno;
        if (e == EACCES) {
            saw_eacces = true;
        } else if (e != ENOENT && e != ENOTDIR && e != ESTALE && e != ENODEV && e != ETIMEDOUT) {
            exec_err = e;
            break;
        }
    }
    if (exec_err == ENOENT && saw_eacces) exec_err = EACCES;
    fail(err_fd, Stage::exec, exec_err);
}

}  // namespace

int child_main(void* arg) {
    const ChildPlan& p = *static_cast<const ChildPlan*>(arg);
    unshare_fds(p);
    reset_signals(p);
    set_session(p);
    join_cgroup(p);
    change_dir(p);
    const int err_fd = wire_fds(p);
    close_the_rest(p, err_fd);
    set_rlimits(p, err_fd);
    set_umask(p);
    set_oom_score(p, err_fd);
    drop_privileges(p, err_fd);
    set_no_new_privs(p, err_fd);
    write_listen_pid(p);
    exec_command(p, err_fd);
}

}  // namespace cow::spawn::detail
