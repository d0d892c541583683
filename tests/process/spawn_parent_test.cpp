// What a spawn leaves behind in the daemon: failed spawns cost no fd, and every spawn gives the
// calling thread its signal mask back.
#include <climits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/os/spawn_crew.hpp"
#include "daemon/spawn/spawn.hpp"
#include "tests/support/wait_for.hpp"

using namespace cow;
using namespace cow::test;

namespace {

std::string helper(const char* name) {
    return std::string(COWHERD_BIN_DIR) + "/" + name;
}

// Owns the argv/env storage a Plan points into.
struct PlanBuilder {
    std::vector<std::string> args, env{"PATH=/usr/bin:/bin"};
    spawn::Plan plan;
    explicit PlanBuilder(std::vector<std::string> argv) : args(std::move(argv)) {
        plan.exec_paths = spawn::exec_candidates(args[0], "/usr/bin:/bin");
        plan.display_path = args[0];
        for (auto& a : args)
            plan.argv.push_back(a.data());
        for (auto& e : env)
            plan.envp.push_back(e.data());
    }
};

// Every child a test spawns, killed and reaped on the way out, a failing assertion included.
struct Children {
    std::vector<pid_t> pids;
    void add(pid_t pid) {
        if (pid > 0) pids.push_back(pid);
    }
    // Reaps them all; returns how many exited with `code`.
    int reap(int code) {
        int matching = 0;
        for (pid_t pid : pids) {
            int status = 0;
            if (!WaitFor([&] { return waitpid(pid, &status, WNOHANG) == pid; })) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
            }
            if (WIFEXITED(status) && WEXITSTATUS(status) == code) ++matching;
        }
        pids.clear();
        return matching;
    }
    ~Children() {
        for (pid_t pid : pids) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
};

// The parent's open fds and what each one is, without the one the listing itself opens.
std::map<int, std::string> open_fds() {
    std::map<int, std::string> out;
    DIR* d = opendir("/proc/self/fd");
    if (!d) return out;
    const int self = dirfd(d);
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        const int fd = std::atoi(e->d_name);
        if (fd == self) continue;
        char target[PATH_MAX] = {};
        const ssize_t n = readlink(("/proc/self/fd/" + std::string(e->d_name)).c_str(), target,
                                   sizeof target - 1);
        out[fd] = n > 0 ? std::string(target, static_cast<std::size_t>(n)) : "?";
    }
    closedir(d);
    return out;
}

// The ways a spawn can fail after clone, at stages before and after the child has placed its
// fds. Each comes with the stage it must report.
struct Failure {
    const char* what;
    spawn::Stage stage;
    void (*spoil)(spawn::Plan&);
};

const std::vector<Failure>& failures() {
    static const std::vector<Failure> all = {
        {"missing binary", spawn::Stage::exec,
         [](spawn::Plan& p) {
             p.exec_paths = {"/nonexistent/cowherd-no-such-binary"};
             p.display_path = p.exec_paths[0];
         }},
        {"bad cwd", spawn::Stage::chdir, [](spawn::Plan& p) { p.cwd = "/nonexistent-cowherd"; }},
        {"bad cgroup", spawn::Stage::cgroup,
         [](spawn::Plan& p) { p.cgroup_procs = "/nonexistent-cowherd/cgroup.procs"; }},
        // A soft limit over the hard one.
        {"bad rlimit", spawn::Stage::rlimits,
         [](spawn::Plan& p) {
             p.rlimits.push_back({RLIMIT_CORE, 2, 1});
         }},
        // More groups than NGROUPS_MAX: refused to root and to anyone else alike.
        {"refused identity", spawn::Stage::groups,
         [](spawn::Plan& p) {
             p.set_ids = true;
             p.uid = getuid();
             p.gid = getgid();
             p.groups.assign(NGROUPS_MAX + 1, getgid());
         }},
    };
    return all;
}

// A plan that also hands the child fds to place, so a failure after wire_fds has fds to drop.
struct FailingSpawn {
    PlanBuilder b{{helper("probe"), "/dev/null"}};
    int p[2] = {-1, -1};
    explicit FailingSpawn(const Failure& f) {
        if (pipe2(p, O_CLOEXEC) == 0) {
            b.plan.stdout_fd = p[1];
            b.plan.pass_fds = {p[0], p[1]};
        }
        f.spoil(b.plan);
    }
    ~FailingSpawn() {
        for (int fd : p)
            if (fd >= 0) close(fd);
    }
};

std::string mask_text(const sigset_t& s) {
    std::string out;
    for (int sig = 1; sig < NSIG; ++sig)
        if (sigismember(&s, sig) == 1) out += std::to_string(sig) + " ";
    return out.empty() ? "(none)" : out;
}

sigset_t current_mask() {
    sigset_t now;
    sigemptyset(&now);
    pthread_sigmask(SIG_SETMASK, nullptr, &now);
    return now;
}

// Sets a mask for the test's span and puts back the one it found.
struct MaskScope {
    sigset_t saved;
    explicit MaskScope(const sigset_t& mask) { pthread_sigmask(SIG_SETMASK, &mask, &saved); }
    ~MaskScope() { pthread_sigmask(SIG_SETMASK, &saved, nullptr); }
};

}  // namespace

TEST(SpawnParent, FailedSpawnsLeakNoFd) {
    constexpr int kRounds = 40;
    // The fds each failing plan holds exist before the first snapshot and outlive the last.
    std::vector<std::unique_ptr<FailingSpawn>> spawns;
    for (const Failure& f : failures())
        spawns.push_back(std::make_unique<FailingSpawn>(f));
    std::vector<spawn::Plan*> batch;
    for (auto& s : spawns)
        batch.push_back(&s->b.plan);
    SpawnCrew crew;
    const auto before = open_fds();
    ASSERT_FALSE(before.empty());

    Children children;
    for (int round = 0; round < kRounds; ++round) {
        for (std::size_t i = 0; i < spawns.size(); ++i) {
            const Failure& f = failures()[i];
            auto r = spawn::spawn(spawns[i]->b.plan);
            children.add(r.pid);
            ASSERT_FALSE(r.ok) << f.what;
            ASSERT_EQ(r.stage, f.stage) << f.what << ": " << r.message;
            ASSERT_GT(r.pid, 0) << f.what << ": failed after clone, so there is a child";
        }
        // The same from the crew's helper threads, each on its own stack slot.
        for (const auto& r : crew.run(batch)) {
            children.add(r.pid);
            ASSERT_FALSE(r.ok);
        }
    }
    const std::size_t spawned = children.pids.size();
    EXPECT_EQ(children.reap(127), static_cast<int>(spawned)) << "every failed child exits 127";
    EXPECT_EQ(open_fds(), before) << spawned << " failed spawns changed the parent's fds";
}

TEST(SpawnParent, EverySpawnGivesTheCallerItsSignalMaskBack) {
    // A mask unlike both "all blocked" (what spawn sets around clone) and "none".
    sigset_t odd;
    sigemptyset(&odd);
    for (int sig : {SIGUSR1, SIGWINCH, SIGTERM, SIGRTMIN + 3})
        sigaddset(&odd, sig);
    sigset_t none;
    sigemptyset(&none);

    SpawnCrew crew;
    Children children;
    for (const sigset_t* mask : {&odd, &none}) {
        MaskScope scope(*mask);
        const std::string want = mask_text(current_mask());
        ASSERT_EQ(want, mask_text(*mask));
        PlanBuilder ok({"/bin/true"});
        auto r = spawn::spawn(ok.plan);
        children.add(r.pid);
        ASSERT_TRUE(r.ok) << r.message;
        EXPECT_EQ(mask_text(current_mask()), want) << "after a spawn that succeeded";

        std::vector<std::unique_ptr<FailingSpawn>> spawns;
        std::vector<spawn::Plan*> batch{&ok.plan};
        for (const Failure& f : failures()) {
            spawns.push_back(std::make_unique<FailingSpawn>(f));
            auto fr = spawn::spawn(spawns.back()->b.plan);
            children.add(fr.pid);
            ASSERT_FALSE(fr.ok) << f.what;
            EXPECT_EQ(mask_text(current_mask()), want) << "after a spawn that failed: " << f.what;
            batch.push_back(&spawns.back()->b.plan);
        }
        for (const auto& br : crew.run(batch))
            children.add(br.pid);
        EXPECT_EQ(mask_text(current_mask()), want) << "after a crew batch";
    }
    children.reap(0);
}
