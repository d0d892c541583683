// Running programs from tests: capture output and exit status with a deadline, and a guard
// that leaves no process behind even when a test fails half-way.
#pragma once

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/wait_for.hpp"

extern char** environ;

namespace cow::test {

struct RunResult {
    int code = -1;  // exit code, or 128+signal, or -1 on timeout
    std::string out;
    std::string err;
};

inline pid_t spawn_with(const std::vector<std::string>& argv, int out_fd, int err_fd,
                        const std::vector<std::string>& extra_env = {}) {
    std::vector<char*> args;
    for (auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_store;
    for (char** e = environ; *e; ++e)
        env_store.emplace_back(*e);
    for (auto& e : extra_env)
        env_store.push_back(e);
    std::vector<char*> env;
    for (auto& e : env_store)
        env.push_back(e.data());
    env.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (out_fd >= 0) posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    if (err_fd >= 0) posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), env.data());
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? pid : -1;
}

inline int decode(int st) {
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

// Runs argv to completion, capturing stdout and stderr; kills it after `deadline`.
inline RunResult run(const std::vector<std::string>& argv,
                     std::chrono::milliseconds deadline = std::chrono::seconds(30),
                     const std::vector<std::string>& extra_env = {}) {
    RunResult r;
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) return r;
    pid_t pid = spawn_with(argv, out[1], err[1], extra_env);
    close(out[1]);
    close(err[1]);
    if (pid < 0) {
        close(out[0]);
        close(err[0]);
        return r;
    }
    const auto end = std::chrono::steady_clock::now() + deadline;
    bool out_open = true, err_open = true, timed_out = false;
    char buf[65536];
    while (out_open || err_open) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            end - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        pollfd p[2] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}};
        if (::poll(p, 2, static_cast<int>(left.count())) < 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t n = read(p[i].fd, buf, sizeof buf);
            if (n <= 0) {
                (i == 0 ? out_open : err_open) = false;
                continue;
            }
            (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
        }
    }
    close(out[0]);
    close(err[0]);
    int st = 0;
    if (timed_out) kill(pid, SIGKILL);
    if (!WaitFor([&] { return waitpid(pid, &st, WNOHANG) == pid; }, std::chrono::seconds(10))) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    r.code = timed_out ? -1 : decode(st);
    return r;
}

// Pids of our direct children, from /proc (orphans of a killed daemon land here because the
// test makes itself a subreaper).
inline std::vector<pid_t> children_of(pid_t parent) {
    std::vector<pid_t> out;
    DIR* d = opendir("/proc");
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        pid_t pid = std::atoi(e->d_name);
        if (pid <= 0) continue;
        std::string stat = slurp("/proc/" + std::string(e->d_name) + "/stat");
        auto rp = stat.rfind(')');
        if (rp == std::string::npos || rp + 4 >= stat.size()) continue;
        pid_t ppid = std::atoi(stat.c_str() + rp + 4);
        if (ppid == parent) out.push_back(pid);
    }
    closedir(d);
    return out;
}

// Makes this test process a subreaper and, on destruction, kills and reaps every process
// still below it.
struct ProcessJanitor {
    ProcessJanitor() { prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
    ~ProcessJanitor() { sweep(); }
    static void sweep() {
        for (int round = 0; round < 50; ++round) {
            auto kids = children_of(getpid());
            if (kids.empty()) break;
            for (pid_t k : kids) {
                kill(-k, SIGKILL);
                kill(k, SIGKILL);
            }
            WaitFor(
                [&] {
                    int st;
                    while (waitpid(-1, &st, WNOHANG) > 0) {
                    }
                    return children_of(getpid()).empty();
                },
                std::chrono::seconds(2));
        }
    }
};

}  // namespace cow::test
