#include "daemon/spawn.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/clone3.hpp"
#include "daemon/spawn_child.hpp"

namespace cow::spawn {
namespace {

// One stack per spawning thread (a stack slot): CLONE_VFORK suspends that thread until its
// child has exec'd or exited, so a slot never has two children on it. Allocated on first
// use, with a guard page below, and kept.
constexpr std::size_t kStackSize = 256 * 1024;

// A child shares our fd table (CLONE_FILES) until its first syscall, which gives it a private
// copy of the fds below Plan::fd_limit only. Without this, every spawn copied and then closed
// all of the daemon's fds, two capture pipes per worker: O(workers) per spawn, 0.24 ms each at
// 1000 workers (perf: filp_flush, dnotify_flush in close_range). The daemon's long-lived fds
// therefore live at kHighFds and above (park_high), and what a child needs stays below.
constexpr int kHighFds = 256;

// Cleared once clone3 with CLONE_INTO_CGROUP turns out unsupported; then clone() forever.
std::atomic<bool> clone3_works{true};

char* child_stack_top(int slot) {
    static std::atomic<char*> tops[kStackSlots];
    if (slot < 0 || slot >= kStackSlots) return nullptr;
    if (char* top = tops[slot].load(std::memory_order_acquire)) return top;
    const long page = sysconf(_SC_PAGESIZE);
    void* base = mmap(nullptr, kStackSize + page, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) return nullptr;
    mprotect(base, page, PROT_NONE);
    char* top = static_cast<char*>(base) + page + kStackSize;
    tops[slot].store(top, std::memory_order_release);  // only slot's own thread allocates it
    return top;
}

std::string describe_failure(const Plan& plan, Stage stage, int err) {
    std::string what;
    switch (stage) {
        case Stage::exec:
            what = "exec " + plan.display_path;
            break;
        case Stage::chdir:
            what = std::string("chdir ") + (plan.cwd ? plan.cwd : "");
            break;
        case Stage::cgroup:
            what = std::string("join cgroup ") + (plan.cgroup_procs ? plan.cgroup_procs : "");
            break;
        default:
            what = to_string(stage);
            break;
    }
    return what + ": " + std::strerror(err);
}

}  // namespace

int park_high(int fd) {
    static const bool room = [] {
        rlimit rl{};
        return ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 2 * kHighFds;
    }();
    if (!room || fd < 0 || fd >= kHighFds) return fd;
    int high = ::fcntl(fd, F_DUPFD_CLOEXEC, kHighFds);
    if (high < 0) return fd;
    ::close(fd);
    return high;
}

const char* to_string(Stage s) {
    switch (s) {
        case Stage::none:
            return "none";
        case Stage::clone:
            return "clone";
        case Stage::pipe:
            return "pipe";
        case Stage::signals:
            return "reset signals";
        case Stage::setsid:
            return "setsid";
        case Stage::cgroup:
            return "join cgroup";
        case Stage::chdir:
            return "chdir";
        case Stage::stdio:
            return "set up stdio";
        case Stage::fds:
            return "set up fds";
        case Stage::rlimits:
            return "setrlimit";
        case Stage::umask:
            return "umask";
        case Stage::groups:
            return "setgroups";
        case Stage::gid:
            return "setresgid";
        case Stage::uid:
            return "setresuid";
        case Stage::verify_ids:
            return "verify uid/gid";
        case Stage::no_new_privs:
            return "set no_new_privs";
        case Stage::oom_score:
            return "set oom_score_adj";
        case Stage::exec:
            return "exec";
    }
    return "unknown stage";
}

std::vector<std::string> exec_candidates(const std::string& file, const std::string& path_env) {
    if (file.find('/') != std::string::npos) return {file};
    std::vector<std::string> out;
    const std::string_view path = path_env.empty()
                                      ? std::string_view("/usr/local/bin:/usr/bin:/bin")
                                      : std::string_view(path_env);
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t end = path.find(':', start);
        if (end == std::string_view::npos) end = path.size();
        std::string dir(path.substr(start, end - start));
        if (dir.empty()) dir = ".";
        out.push_back(dir + "/" + file);
        start = end + 1;
    }
    return out;
}

void make_ready(Plan& plan) {
    if (plan.argv.empty() || plan.argv.back() != nullptr) plan.argv.push_back(nullptr);
    if (plan.envp.empty() || plan.envp.back() != nullptr) plan.envp.push_back(nullptr);
    plan.scratch.assign(3 + plan.pass_fds.size(), -1);
}

Result spawn(Plan& plan, int stack_slot) {
    Result r;
    char* stack = child_stack_top(stack_slot);
    if (!stack) {
        r.stage = Stage::clone;
        r.err = ENOMEM;
        r.message = "allocate the spawn stack: " + std::string(std::strerror(ENOMEM));
        return r;
    }
    make_ready(plan);  // allocates nothing when already done

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        r.stage = Stage::pipe;
        r.err = errno;
        r.message = "create the spawn error pipe: " + std::string(std::strerror(r.err));
        return r;
    }
    detail::ChildArgs args{&plan, pipefd[1]};
    int top = pipefd[1];
    for (int fd : {plan.stdin_fd, plan.stdout_fd, plan.stderr_fd})
        top = std::max(top, fd);
    for (int fd : plan.pass_fds)
        top = std::max(top, fd);
    plan.fd_limit = top + 1;

    // Every signal stays blocked from before clone until the child has reset its dispositions;
    // the parent restores its mask on every path.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = -1;
    int clone_errno = 0;
    // Born in its cgroup when the kernel can (5.7+); else clone() and a cgroup.procs write.
    if (plan.cgroup_fd >= 0 && clone3_works.load(std::memory_order_relaxed)) {
        const char* saved = plan.cgroup_procs;
        plan.cgroup_procs = nullptr;
        long rc = detail::clone3_into_cgroup(detail::child_main, &args, stack - kStackSize,
                                             kStackSize, plan.cgroup_fd);
        if (rc >= 0) {
            pid = static_cast<pid_t>(rc);
        } else if (rc == -ENOSYS || rc == -E2BIG || rc == -EINVAL || rc == -EPERM) {
            clone3_works.store(false, std::memory_order_relaxed);
            plan.cgroup_procs = saved;
        } else {
            clone_errno = static_cast<int>(-rc);
            plan.cgroup_procs = saved;
            pid = -2;  // a real failure: report it below
        }
    }
    if (pid == -1) {
        pid = clone(detail::child_main, stack, detail::kShareVm | detail::kShareFiles | SIGCHLD,
                    &args);
        clone_errno = errno;
    }
    if (pid == -2) pid = -1;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    close(pipefd[1]);

    if (pid < 0) {
        close(pipefd[0]);
        r.stage = Stage::clone;
        r.err = clone_errno;
        r.message = "clone: " + std::string(std::strerror(clone_errno));
        return r;
    }
    r.pid = pid;
    ChildError ce{};
    ssize_t n;
    do {
        n = read(pipefd[0], &ce, sizeof ce);
    } while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    if (n == static_cast<ssize_t>(sizeof ce)) {
        r.stage = static_cast<Stage>(ce.stage);
        r.err = ce.err;
        r.message = describe_failure(plan, r.stage, r.err);
        return r;
    }
    r.ok = true;
    return r;
}

}  // namespace cow::spawn
