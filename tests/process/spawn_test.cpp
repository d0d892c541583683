// Real fork-exec through spawn(): errors come back through the pipe with their stage and
// errno; the child starts clean (fds, signal mask and dispositions, session).
#include "daemon/spawn/spawn.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/os/reaper.hpp"
#include "daemon/os/spawn_crew.hpp"
#include "tests/support/wait_for.hpp"

using namespace cow;
using namespace cow::test;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/cowherd-spawn-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};

// Owns the argv/env storage a Plan points into.
struct PlanBuilder {
    std::vector<std::string> args, env;
    spawn::Plan plan;
    explicit PlanBuilder(std::vector<std::string> argv) : args(std::move(argv)) {
        env = {"PATH=/usr/bin:/bin", "COWHERD_POOL=t", "COWHERD_WORKER=0"};
    }
    spawn::Plan& build() {
        plan.exec_paths = spawn::exec_candidates(args[0], "/usr/bin:/bin");
        plan.display_path = args[0];
        plan.argv.clear();
        plan.envp.clear();
        for (auto& a : args)
            plan.argv.push_back(a.data());
        for (auto& e : env)
            plan.envp.push_back(e.data());
        return plan;
    }
};

// Waits for one specific child with a deadline; kills it if the deadline passes.
int wait_child(pid_t pid) {
    int status = -1;
    bool ok = WaitFor([&] { return waitpid(pid, &status, WNOHANG) == pid; });
    if (!ok) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    return status;
}

std::string helper(const char* name) {
    return std::string(COWHERD_BIN_DIR) + "/" + name;
}

TEST(Spawn, MissingBinaryReportsExecEnoent) {
    PlanBuilder b({"/nonexistent/cowherd-no-such-binary"});
    auto r = spawn::spawn(b.build());
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.stage, spawn::Stage::exec);
    EXPECT_EQ(r.err, ENOENT);
    EXPECT_EQ(r.message, "exec /nonexistent/cowherd-no-such-binary: No such file or directory");
    ASSERT_GT(r.pid, 0);
    int st = wait_child(r.pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 127);
}

TEST(Spawn, PathSearchFindsBinariesAndReportsMissingOnes) {
    PlanBuilder ok({"true"});
    auto r = spawn::spawn(ok.build());
    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_EQ(WEXITSTATUS(wait_child(r.pid)), 0);

    PlanBuilder missing({"cowherd-surely-not-in-path"});
    auto m = spawn::spawn(missing.build());
    EXPECT_FALSE(m.ok);
    EXPECT_EQ(m.err, ENOENT);
    EXPECT_EQ(m.message, "exec cowherd-surely-not-in-path: No such file or directory");
    wait_child(m.pid);
}

TEST(Spawn, NonExecutableFileReportsEacces) {
    TempDir d;
    auto file = d.path / "not-executable";
    { std::ofstream(file) << "#!/bin/sh\necho hi\n"; }
    chmod(file.c_str(), 0644);
    PlanBuilder b({file.string()});
    auto r = spawn::spawn(b.build());
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.err, EACCES);
    EXPECT_EQ(r.stage, spawn::Stage::exec);
    wait_child(r.pid);
}

TEST(Spawn, BadCwdReportsChdirStage) {
    PlanBuilder b({"/bin/true"});
    auto& plan = b.build();
    plan.cwd = "/nonexistent-cowherd-dir";
    auto r = spawn::spawn(plan);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.stage, spawn::Stage::chdir);
    EXPECT_EQ(r.err, ENOENT);
    EXPECT_EQ(r.message, "chdir /nonexistent-cowherd-dir: No such file or directory");
    wait_child(r.pid);
}

TEST(Spawn, ChildStartsCleanEvenWhenTheParentIsNot) {
    TempDir d;
    auto report = (d.path / "report").string();
    // Dirty the parent: a leaked fd without CLOEXEC, a blocked signal, an ignored signal.
    int leaked = open("/dev/null", O_RDONLY);
    ASSERT_GE(leaked, 0);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    auto old_pipe = signal(SIGPIPE, SIG_IGN);
    auto old_hup = signal(SIGHUP, SIG_IGN);

    PlanBuilder b({helper("probe"), report});
    auto r = spawn::spawn(b.build());

    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    signal(SIGPIPE, old_pipe);
    signal(SIGHUP, old_hup);
    close(leaked);

    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_EQ(WEXITSTATUS(wait_child(r.pid)), 0);
    std::string rep = slurp(report);
    ASSERT_FALSE(rep.empty());
    EXPECT_EQ(field(rep, "pid"), std::to_string(r.pid));
    EXPECT_EQ(field(rep, "fds"), "0,1,2") << rep;
    EXPECT_EQ(field(rep, "sigblk"), "0000000000000000") << rep;
    EXPECT_EQ(field(rep, "sigign"), "0000000000000000") << rep;
    EXPECT_EQ(field(rep, "sid"), std::to_string(r.pid)) << "own session";
    EXPECT_EQ(field(rep, "pgid"), std::to_string(r.pid)) << "own process group";
    EXPECT_EQ(field(rep, "pool"), "t");
    EXPECT_EQ(field(rep, "worker"), "0");
}

TEST(Spawn, StdioAndPassedFdsLandInPlaceEvenWhenTheyCollide) {
    TempDir d;
    auto report = (d.path / "report").string();
    auto out = (d.path / "out").string();
    int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    PlanBuilder b({helper("probe"), report});
    auto& plan = b.build();
    plan.stdout_fd = out_fd;
    // Pass them in an order that forces a swap between the target slots.
    plan.pass_fds = {p[1], p[0], out_fd};
    auto r = spawn::spawn(plan);
    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_EQ(WEXITSTATUS(wait_child(r.pid)), 0);
    EXPECT_EQ(field(slurp(report), "fds"), "0,1,2,3,4,5");
    close(out_fd);
    close(p[0]);
    close(p[1]);
}

// The child borrows our fd table until it copies the part it keeps; its dups and closes must
// never reach ours, and fds of ours above and below that part must not reach it.
TEST(Spawn, TheChildsFdTableIsItsOwnAndHoldsOnlyWhatItWasGiven) {
    TempDir d;
    auto report = (d.path / "report").string();
    auto out = (d.path / "out").string();
    int low_leak = open("/dev/null", O_RDONLY);  // no CLOEXEC: only the child's closing stops it
    int high_leak = fcntl(low_leak, F_DUPFD, 400);
    int out_fd = spawn::park_high(open(out.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_GE(low_leak, 0);
    ASSERT_GE(high_leak, 400);
    ASSERT_GE(out_fd, 0);
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    PlanBuilder b({helper("probe"), report});
    auto& plan = b.build();
    plan.stdout_fd = out_fd;
    plan.pass_fds = {p[1]};
    auto r = spawn::spawn(plan);
    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_EQ(WEXITSTATUS(wait_child(r.pid)), 0);
    EXPECT_EQ(field(slurp(report), "fds"), "0,1,2,3");
    // Ours are all still open, and fd 0-3 are what they were.
    for (int fd : {0, 1, 2, low_leak, high_leak, out_fd, p[0], p[1]})
        EXPECT_GE(fcntl(fd, F_GETFD), 0) << "fd " << fd << " closed under us";
    EXPECT_TRUE(fcntl(out_fd, F_GETFD) & FD_CLOEXEC);
    for (int fd : {low_leak, high_leak, out_fd, p[0], p[1]})
        close(fd);
}

// Before Linux 5.9 there is no close_range; a seccomp filter gives this test such a kernel. The
// child must still arrive at exec holding nothing but fds 0-2, fds of ours at both ends of the
// table included. The filter cannot be undone, so it lives in a forked copy of this process.
TEST(Spawn, WithoutCloseRangeTheChildStillClosesEveryFd) {
#if defined(__x86_64__)
    constexpr unsigned kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
    constexpr unsigned kArch = AUDIT_ARCH_AARCH64;
#else
    GTEST_SKIP() << "no seccomp architecture constant for this machine";
    constexpr unsigned kArch = 0;
#endif
    TempDir d;
    const std::string report = (d.path / "report").string();

    int result[2];
    ASSERT_EQ(pipe2(result, O_CLOEXEC), 0);
    const pid_t copy = fork();
    ASSERT_GE(copy, 0);
    if (copy == 0) {
        // The forked copy: reports one line on result[1] and exits.
        auto say = [&](const std::string& line) {
            (void)!write(result[1], line.data(), line.size());
            _exit(0);
        };
        sock_filter prog[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 0, 3),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_close_range, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        sock_fprog fprog{static_cast<unsigned short>(sizeof prog / sizeof prog[0]), prog};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) != 0)
            say(std::string("error=seccomp:") + std::strerror(errno));
        if (syscall(SYS_close_range, 1000, 1000, 0) == 0 || errno != ENOSYS)
            say("error=close_range-still-works");
        // Fds without close-on-exec, low and high: only the child's closing keeps them out.
        const int low = open("/dev/null", O_RDONLY);
        const int high = fcntl(low, F_DUPFD, 400);
        if (low < 0 || high < 400) say("error=no-fds-to-leak");
        PlanBuilder b({helper("probe"), report});
        auto& plan = b.build();
        plan.pass_fds = {low};
        auto r = spawn::spawn(plan);
        if (!r.ok) say("error=spawn:" + r.message);
        int status = 0;
        if (!WaitFor([&] { return waitpid(r.pid, &status, WNOHANG) == r.pid; })) {
            kill(r.pid, SIGKILL);
            say("error=probe-hung");
        }
        const bool ours_open = fcntl(low, F_GETFD) >= 0 && fcntl(high, F_GETFD) >= 0;
        say("fds=" + field(slurp(report), "fds") + " ours=" + (ours_open ? "open" : "closed"));
    }
    close(result[1]);
    std::string got;
    char buf[512];
    ssize_t n;
    while ((n = read(result[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0) got.append(buf, static_cast<std::size_t>(n));
    close(result[0]);
    int status = 0;
    waitpid(copy, &status, 0);
    EXPECT_EQ(field(got, "error"), "") << got;
    EXPECT_EQ(field(got, "fds"), "0,1,2,3") << "the passed fd lands on 3, nothing else: " << got;
    EXPECT_EQ(field(got, "ours"), "open") << got;
}

TEST(Spawn, ParkHighMovesAnFdAboveWhatSpawnsCopy) {
    rlimit rl{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur <= 512) GTEST_SKIP() << "fd limit " << rl.rlim_cur << ": no room to park";
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    int high = spawn::park_high(fd);
    EXPECT_GE(high, 256);
    EXPECT_LT(fcntl(fd, F_GETFD), 0) << "the low fd was closed";
    EXPECT_TRUE(fcntl(high, F_GETFD) & FD_CLOEXEC);
    EXPECT_EQ(spawn::park_high(high), high) << "already high: left alone";
    close(high);
}

// Plans spawned side by side on several threads: each result belongs to its own plan, a
// failure stays with the plan that failed, and no child sees another's fds.
TEST(SpawnCrew, BatchResultsComeBackInPlanOrder) {
    TempDir d;
    SpawnCrew crew;
    constexpr int kPlans = 24;
    std::vector<std::unique_ptr<PlanBuilder>> builders;
    std::vector<spawn::Plan*> plans;
    for (int i = 0; i < kPlans; ++i) {
        const bool broken = i % 7 == 3;
        builders.push_back(std::make_unique<PlanBuilder>(
            std::vector<std::string>{broken ? "/nonexistent/probe" : helper("probe"),
                                     (d.path / ("report" + std::to_string(i))).string()}));
        plans.push_back(&builders.back()->build());
    }
    auto results = crew.run(plans);
    ASSERT_EQ(results.size(), static_cast<std::size_t>(kPlans));
    for (int i = 0; i < kPlans; ++i) {
        SCOPED_TRACE("plan " + std::to_string(i));
        const auto& r = results[static_cast<std::size_t>(i)];
        if (i % 7 == 3) {
            EXPECT_FALSE(r.ok);
            EXPECT_EQ(r.stage, spawn::Stage::exec);
            EXPECT_EQ(r.err, ENOENT);
            if (r.pid > 0) wait_child(r.pid);
            continue;
        }
        ASSERT_TRUE(r.ok) << r.message;
        EXPECT_EQ(WEXITSTATUS(wait_child(r.pid)), 0);
        std::string rep = slurp((d.path / ("report" + std::to_string(i))).string());
        EXPECT_EQ(field(rep, "pid"), std::to_string(r.pid));
        EXPECT_EQ(field(rep, "fds"), "0,1,2") << rep;
    }
    // A second round on the same crew works as well (the helpers went back to waiting).
    std::vector<spawn::Plan*> again(plans.begin(), plans.begin() + 3);
    for (const auto& r : crew.run(again)) {
        ASSERT_TRUE(r.ok) << r.message;
        EXPECT_EQ(WEXITSTATUS(wait_child(r.pid)), 0);
    }
}

TEST(Spawn, ListenPidSlotCarriesTheChildsOwnPid) {
    TempDir d;
    auto out = (d.path / "env").string();
    PlanBuilder b({"/bin/sh", "-c", "echo \"$LISTEN_PID\" > " + out});
    std::string slot = "LISTEN_PID=" + std::string(20, '\0');
    auto& plan = b.build();
    plan.envp.push_back(slot.data());
    plan.listen_pid_slot = slot.data();
    plan.listen_pid_prefix = 11;
    auto r = spawn::spawn(plan);
    ASSERT_TRUE(r.ok) << r.message;
    EXPECT_EQ(WEXITSTATUS(wait_child(r.pid)), 0);
    EXPECT_EQ(slurp(out), std::to_string(r.pid) + "\n");
}

// SIGCHLD coalesces: one reap_all must collect every child that has exited by then. So the
// children are left unreaped until every one has exited, and reap_all then runs exactly once.
TEST(Reaper, ReapsEveryExitedChildInOnePass) {
    std::vector<pid_t> pids;
    std::set<pid_t> reaped;
    struct Cleanup {
        std::vector<pid_t>& pids;
        std::set<pid_t>& reaped;
        ~Cleanup() {
            for (pid_t p : pids)
                if (!reaped.count(p)) {
                    kill(p, SIGKILL);
                    waitpid(p, nullptr, 0);
                }
        }
    } cleanup{pids, reaped};
    for (int i = 0; i < 50; ++i) {
        PlanBuilder b({"/bin/true"});
        auto r = spawn::spawn(b.build());
        if (r.pid > 0) pids.push_back(r.pid);
        ASSERT_TRUE(r.ok) << r.message;
    }
    // WNOWAIT looks without reaping: each child stays a zombie for reap_all to collect.
    auto exited = [](pid_t pid) {
        siginfo_t si{};
        return waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
               si.si_pid == pid;
    };
    ASSERT_TRUE(WaitFor([&] { return std::all_of(pids.begin(), pids.end(), exited); }));

    const int n = reap_all([&](pid_t pid, int) { reaped.insert(pid); });
    for (pid_t p : pids)
        EXPECT_TRUE(reaped.count(p)) << "pid " << p << " left for a later pass";
    EXPECT_GE(n, static_cast<int>(pids.size()));
}

}  // namespace
