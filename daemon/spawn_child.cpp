// Code between clone and execve. It runs on a borrowed stack in the parent's address space
// (CLONE_VM), so it must not allocate, lock, touch errno-dependent libc state or call anything
// an interceptor might wrap. It therefore uses the raw syscall() entry point only.
//
// Permitted calls: syscall(2) with SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_setsid,
// SYS_unshare, SYS_chdir, SYS_fcntl, SYS_dup3, SYS_close_range, SYS_close, SYS_prlimit64,
// SYS_umask, SYS_setgroups, SYS_setresgid, SYS_setresuid, SYS_getresuid, SYS_getresgid, SYS_prctl,
// SYS_openat, SYS_write, SYS_getpid, SYS_execve, SYS_exit_group.
// Nothing else. The file is built without sanitizers for the same reason.
#include "daemon/spawn_child.hpp"

#include <cerrno>
#include <climits>

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/clone3.hpp"

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

// Writes the decimal pid after the "LISTEN_PID=" prefix, in place.
void format_pid(char* dst, long pid) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = static_cast<char>('0' + pid % 10);
        pid /= 10;
    } while (pid > 0 && n < 23);
    for (int i = 0; i < n; ++i)
        dst[i] = tmp[n - 1 - i];
    dst[n] = '\0';
}

}  // namespace

int child_main(void* arg) {
    auto* a = static_cast<ChildArgs*>(arg);
    Plan& p = *a->plan;
    int err_fd = a->err_fd;

    // We may share the daemon's fd table (kShareFiles): make a private copy of the fds we
    // keep, those below fd_limit, before touching any. The rest are never copied at all.
    if (kShareFiles != 0 && sys(SYS_close_range, p.fd_limit, ~0U, CLOSE_RANGE_UNSHARE) < 0 &&
        sys(SYS_unshare, CLONE_FILES) < 0)  // kernels before 5.9: copy them all
        fail(err_fd, Stage::fds, errno);

    // Default dispositions first, while every signal is still blocked: a handler of the daemon
    // must never run in this child, which shares the daemon's memory. SIG_IGN would also
    // survive execve (the daemon ignores SIGPIPE).
    KernelSigaction dfl{SIG_DFL, 0, nullptr, 0};
    for (int sig = 1; sig < _NSIG; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof(unsigned long));
    }
    unsigned long empty_mask = 0;
    if (sys(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&empty_mask), 0,
            sizeof empty_mask) < 0)
        fail(err_fd, Stage::signals, errno);

    // Own session: the daemon's terminal signals never reach the workers, and the worker's
    // process group is its pid, which stop signals reach as a whole.
    if (sys(SYS_setsid) < 0) fail(err_fd, Stage::setsid, errno);

    // Join the worker's cgroup before anything can fork, so no descendant is ever outside it.
    if (p.cgroup_procs) {
        long fd =
            sys(SYS_openat, AT_FDCWD, reinterpret_cast<long>(p.cgroup_procs), O_WRONLY | O_CLOEXEC);
        if (fd < 0) fail(err_fd, Stage::cgroup, errno);
        if (sys(SYS_write, fd, reinterpret_cast<long>("0"), 1) < 0)
            fail(err_fd, Stage::cgroup, errno);
        syscall(SYS_close, fd);
    }

    if (p.cwd && sys(SYS_chdir, reinterpret_cast<long>(p.cwd)) < 0)
        fail(err_fd, Stage::chdir, errno);

    // Place stdio at 0..2 and passed fds at 3.. . Sources may sit inside the target range, so
    // first lift every source and the error pipe above it, then dup into place.
    const int npass = static_cast<int>(p.pass_fds.size());
    const int floor = 3 + npass;
    int* lifted = p.scratch.data();  // 3 + npass entries, sized by the parent
    const int sources[3] = {p.stdin_fd, p.stdout_fd, p.stderr_fd};
    if (err_fd < floor) {
        long moved = sys(SYS_fcntl, err_fd, F_DUPFD_CLOEXEC, floor);
        if (moved < 0) fail(err_fd, Stage::fds, errno);
        err_fd = static_cast<int>(moved);
    }
    for (int i = 0; i < 3 + npass; ++i) {
        int src = i < 3 ? sources[i] : p.pass_fds[static_cast<std::size_t>(i - 3)];
        lifted[i] = -1;
        if (src < 0) continue;
        long moved = sys(SYS_fcntl, src, F_DUPFD_CLOEXEC, floor);
        if (moved < 0) fail(err_fd, i < 3 ? Stage::stdio : Stage::fds, errno);
        lifted[i] = static_cast<int>(moved);
    }
    for (int i = 0; i < 3 + npass; ++i) {
        if (lifted[i] < 0) continue;  // keep the daemon's fd (stdio inherit)
        if (sys(SYS_dup3, lifted[i], i, 0) < 0)
            fail(err_fd, i < 3 ? Stage::stdio : Stage::fds, errno);
    }
    // Close everything else except the error pipe, which closes itself on exec.
    if (err_fd > floor && sys(SYS_close_range, floor, err_fd - 1, 0) < 0)
        fail(err_fd, Stage::fds, errno);
    if (sys(SYS_close_range, err_fd + 1, ~0U, 0) < 0) fail(err_fd, Stage::fds, errno);

    for (const Rlimit& rl : p.rlimits) {
        struct {
            unsigned long long cur, max;
        } lim{rl.soft, rl.hard};
        if (sys(SYS_prlimit64, 0, rl.resource, reinterpret_cast<long>(&lim), 0) < 0)
            fail(err_fd, Stage::rlimits, errno);
    }
    if (p.umask >= 0) syscall(SYS_umask, p.umask);

    if (p.set_oom_score_adj) {
        long fd = sys(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc/self/oom_score_adj"),
                      O_WRONLY | O_CLOEXEC);
        if (fd < 0) fail(err_fd, Stage::oom_score, errno);
        char buf[16];
        int v = p.oom_score_adj, n = 0;
        bool neg = v < 0;
        unsigned uv = neg ? static_cast<unsigned>(-v) : static_cast<unsigned>(v);
        char tmp[12];
        int t = 0;
        do {
            tmp[t++] = static_cast<char>('0' + uv % 10);
            uv /= 10;
        } while (uv > 0);
        if (neg) buf[n++] = '-';
        while (t > 0)
            buf[n++] = tmp[--t];
        if (sys(SYS_write, fd, reinterpret_cast<long>(buf), n) < 0)
            fail(err_fd, Stage::oom_score, errno);
        syscall(SYS_close, fd);
    }

    // Groups, then gid, then uid: once uid changes we may no longer change the others.
    if (p.set_ids) {
        if (sys(SYS_setgroups, static_cast<long>(p.groups.size()),
                reinterpret_cast<long>(p.groups.data())) < 0)
            fail(err_fd, Stage::groups, errno);
        if (sys(SYS_setresgid, p.gid, p.gid, p.gid) < 0) fail(err_fd, Stage::gid, errno);
        if (sys(SYS_setresuid, p.uid, p.uid, p.uid) < 0) fail(err_fd, Stage::uid, errno);
        uid_t r, e, s;
        gid_t gr, ge, gs;
        if (sys(SYS_getresuid, reinterpret_cast<long>(&r), reinterpret_cast<long>(&e),
                reinterpret_cast<long>(&s)) < 0 ||
            sys(SYS_getresgid, reinterpret_cast<long>(&gr), reinterpret_cast<long>(&ge),
                reinterpret_cast<long>(&gs)) < 0 ||
            r != p.uid || e != p.uid || s != p.uid || gr != p.gid || ge != p.gid || gs != p.gid)
            fail(err_fd, Stage::verify_ids, EPERM);
    }
    if (p.no_new_privs && sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0) < 0)
        fail(err_fd, Stage::no_new_privs, errno);

    if (p.listen_pid_slot) format_pid(p.listen_pid_slot + p.listen_pid_prefix, syscall(SYS_getpid));

    // Like execvp: try each PATH candidate; EACCES is remembered in preference to ENOENT.
    int exec_err = ENOENT;
    bool saw_eacces = false;
    for (const std::string& path : p.exec_paths) {
        syscall(SYS_execve, path.c_str(), p.argv.data(), p.envp.data());
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

}  // namespace cow::spawn::detail
