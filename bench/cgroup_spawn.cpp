// What a worker's own cgroup costs at spawn time: mkdir, opening it, and a clone born in it
// (clone3 with CLONE_INTO_CGROUP builds a new css_set) against the same clone without it.
//
//   bench_cgroup_spawn [N=1000] [PARENT=/sys/fs/cgroup/unified]
//
// Needs root and a writable cgroup v2 directory PARENT. Starts N `sleep 100000` children per
// variant (clone3 with CLONE_VFORK, no CLONE_VM, the same for both), kills and reaps them,
// and removes its cgroups again.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
char* const kArgv[] = {const_cast<char*>("/bin/sleep"), const_cast<char*>("100000"), nullptr};

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

pid_t spawn_into(int cgroup_fd) {
    clone_args ca;
    std::memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_VFORK | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0);
    ca.exit_signal = SIGCHLD;
    ca.cgroup = static_cast<unsigned long long>(cgroup_fd >= 0 ? cgroup_fd : 0);
    long r = syscall(SYS_clone3, &ca, sizeof ca);
    if (r == 0) {
        execve(kArgv[0], kArgv, environ);
        _exit(127);
    }
    return r < 0 ? -errno : static_cast<pid_t>(r);
}

void kill_all(std::vector<pid_t>& pids) {
    for (pid_t p : pids)
        if (p > 0) kill(p, SIGKILL);
    for (pid_t p : pids)
        if (p > 0) waitpid(p, nullptr, 0);
    pids.clear();
}

}  // namespace

int main(int argc, char** argv) {
    const int n = argc > 1 ? std::atoi(argv[1]) : 1000;
    const std::string base =
        std::string(argc > 2 ? argv[2] : "/sys/fs/cgroup/unified") + "/bench-cgroup-spawn";
    if (mkdir(base.c_str(), 0755) < 0) {
        std::perror(base.c_str());
        return 1;
    }
    std::vector<pid_t> pids;
    std::vector<int> fds;

    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i)
        mkdir((base + "/w" + std::to_string(i)).c_str(), 0755);
    const double mkdir_ms = ms_since(t0);
    t0 = Clock::now();
    for (int i = 0; i < n; ++i)
        fds.push_back(
            open((base + "/w" + std::to_string(i)).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    const double open_ms = ms_since(t0);

    t0 = Clock::now();
    for (int i = 0; i < n; ++i)
        pids.push_back(spawn_into(-1));
    const double plain_ms = ms_since(t0);
    kill_all(pids);

    t0 = Clock::now();
    for (int i = 0; i < n; ++i)
        pids.push_back(spawn_into(fds[static_cast<std::size_t>(i)]));
    const double into_ms = ms_since(t0);
    const int failed = !pids.empty() && pids.front() < 0 ? -pids.front() : 0;
    kill_all(pids);

    for (int fd : fds)
        close(fd);
    t0 = Clock::now();
    for (int i = 0; i < n; ++i)
        rmdir((base + "/w" + std::to_string(i)).c_str());
    const double rmdir_ms = ms_since(t0);
    rmdir(base.c_str());
    if (failed) {
        std::fprintf(stderr, "clone3 into a cgroup failed: %s\n", std::strerror(failed));
        return 1;
    }
    std::printf(
        "N=%d: mkdir %.1f ms, open %.1f ms, clone3 %.1f ms, clone3 into its cgroup "
        "%.1f ms (+%.1f us each), rmdir %.1f ms\n",
        n, mkdir_ms, open_ms, plain_ms, into_ms, (into_ms - plain_ms) * 1000 / n, rmdir_ms);
    return 0;
}
