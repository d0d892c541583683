#include "daemon/spawn/spawn.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/spawn/clone3.hpp"
#include "daemon/spawn/spawn_child.hpp"

namespace cow::spawn {
namespace {

// One stack per spawning thread (a stack slot): CLONE_VFORK suspends that thread until its
// child has exec'd or exited, so a slot never has two children on it. Allocated on first
// use, with a guard page below, and kept.
constexpr std::size_t kStackSize = 256 * 1024;

// A child shares our fd table (CLONE_FILES) until its first syscall, which gives it a private
// copy of the fds below ChildPlan::fd_limit only. Without this, every spawn copied and then closed
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

// Both ends of the close-on-exec pipe the child reports a failure on, closed on every path out
// of spawn(): a failed spawn must not cost the daemon an fd.
struct ErrorPipe {
    int read_end = -1, write_end = -1;
    ErrorPipe() = default;
    ErrorPipe(const ErrorPipe&) = delete;
    ErrorPipe& operator=(const ErrorPipe&) = delete;
    ~ErrorPipe() {
        close_write();
        if (read_end >= 0) ::close(read_end);
    }
    bool open() {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0) return false;
        read_end = fds[0];
        write_end = fds[1];
        return true;
    }
    void close_write() {
        if (write_end >= 0) ::close(write_end);
        write_end = -1;
    }
};

// Blocks every signal for its scope and then restores the mask it found, on every path: the
// child must not take a signal before it has reset the daemon's handlers, and the daemon's
// thread must get its own mask back whatever happened to the child.
class SignalsBlocked {
  public:
    SignalsBlocked() {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old_);
    }
    ~SignalsBlocked() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
    SignalsBlocked(const SignalsBlocked&) = delete;
    SignalsBlocked& operator=(const SignalsBlocked&) = delete;

  private:
    sigset_t old_;
};

// The child's view of a ready plan (make_ready): plain values and pointers into the plan,
// which the caller keeps unchanged until spawn() returns.
detail::ChildPlan flatten(Plan& plan, int err_fd) {
    detail::ChildPlan c;
    c.err_fd = err_fd;
    c.stdio[0] = plan.stdin_fd;
    c.stdio[1] = plan.stdout_fd;
    c.stdio[2] = plan.stderr_fd;
    c.pass_fds = plan.pass_fds.data();
    c.npass = static_cast<int>(plan.pass_fds.size());
    c.lifted = plan.scratch.data();
    int top = err_fd;
    for (int fd : c.stdio)
        top = std::max(top, fd);
    for (int fd : plan.pass_fds)
        top = std::max(top, fd);
    c.fd_limit = top + 1;
    rlimit nofile{};
    c.fd_bound = ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < INT_MAX
                     ? static_cast<int>(nofile.rlim_cur)
                     : INT_MAX;

    c.cgroup_procs = plan.cgroup_procs;
    c.cwd = plan.cwd;
    c.rlimits = plan.rlimits.data();
    c.nrlimits = static_cast<int>(plan.rlimits.size());
    c.umask = plan.umask;
    if (plan.set_oom_score_adj) {
        auto [end, ec] = std::to_chars(c.oom_score_adj, c.oom_score_adj + sizeof c.oom_score_adj,
                                       plan.oom_score_adj);
        if (ec == std::errc()) c.oom_score_adj_len = static_cast<int>(end - c.oom_score_adj);
    }
    c.set_ids = plan.set_ids;
    c.uid = plan.uid;
    c.gid = plan.gid;
    c.groups = plan.groups.data();
    c.ngroups = static_cast<int>(plan.groups.size());
    c.no_new_privs = plan.no_new_privs;

    if (plan.listen_pid_slot) c.listen_pid_digits = plan.listen_pid_slot + plan.listen_pid_prefix;
    c.exec_paths = plan.exec_cstrs.data();
    c.nexec_paths = static_cast<int>(plan.exec_cstrs.size());
    c.argv = plan.argv.data();
    c.envp = plan.envp.data();
    return c;
}

// Starts child_main on `stack`, born in the cgroup of cgroup_fd when the kernel can (5.7+), else
// with clone() and the child's own cgroup.procs write. Returns the pid, or -1 with `err` set.
pid_t clone_child(detail::ChildPlan& child, int cgroup_fd, char* stack, int& err) {
    const SignalsBlocked blocked;
    if (cgroup_fd >= 0 && clone3_works.load(std::memory_order_relaxed)) {
        const char* cgroup_procs = child.cgroup_procs;
        child.cgroup_procs = nullptr;
        long rc = detail::clone3_into_cgroup(detail::child_main, &child, stack - kStackSize,
                                             kStackSize, cgroup_fd);
        if (rc >= 0) return static_cast<pid_t>(rc);
        if (rc != -ENOSYS && rc != -E2BIG && rc != -EINVAL && rc != -EPERM) {
            err = static_cast<int>(-rc);
            return -1;
        }
        clone3_works.store(false, std::memory_order_relaxed);
        child.cgroup_procs = cgroup_procs;
    }
    pid_t pid =
        clone(detail::child_main, stack, detail::kShareVm | detail::kShareFiles | SIGCHLD, &child);
    if (pid < 0) err = errno;
    return pid;
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
    plan.exec_cstrs.clear();  // keeps its capacity: a second call allocates nothing
    for (const std::string& path : plan.exec_paths)
        plan.exec_cstrs.push_back(path.c_str());
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

    ErrorPipe pipe;
    if (!pipe.open()) {
        r.stage = Stage::pipe;
        r.err = errno;
        r.message = "create the spawn error pipe: " + std::string(std::strerror(r.err));
        return r;
    }
    detail::ChildPlan child = flatten(plan, pipe.write_end);
    int clone_errno = 0;
    const pid_t pid = clone_child(child, plan.cgroup_fd, stack, clone_errno);
    pipe.close_write();  // now only the child holds it, until it execs or exits
    if (pid < 0) {
        r.stage = Stage::clone;
        r.err = clone_errno;
        r.message = "clone: " + std::string(std::strerror(clone_errno));
        return r;
    }
    r.pid = pid;
    ChildError ce{};
    ssize_t n;
    do {
        n = read(pipe.read_end, &ce, sizeof ce);
    } while (n < 0 && errno == EINTR);
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
