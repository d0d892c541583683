// The floors that bench/spawn.py compares cowherd and its peers against: what a bare loop with
// no supervisor logic at all costs on this machine.
//
//   bench_floor_spawn N [CMD ARGS...]
//       posix_spawn N copies of CMD (default: sleep 100000) as fast as possible, then print
//       "elapsed_ns NS" followed by one child pid per line, and exit WITHOUT waiting: the
//       children are left running (the caller kills them). CMD is resolved through PATH once,
//       before the clock starts.
//
//   bench_floor_spawn --replace K FILE STAMP_BIN
//       The replacement floor: a minimal synchronous supervisor of one bench_stamp worker.
//       K times: read CLOCK_MONOTONIC, SIGKILL the worker, waitpid it, posix_spawn a new
//       `STAMP_BIN FILE` and wait for its line in FILE. Prints "replace_ns P50 MAX" and then
//       one latency (stamp - kill time, ns) per line. Kills its last worker before exiting.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

namespace {

long long mono_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

std::string resolve(const char* file) {
    if (std::strchr(file, '/')) return file;
    const char* path = std::getenv("PATH");
    std::string p = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
    std::size_t start = 0;
    while (start <= p.size()) {
        std::size_t end = p.find(':', start);
        if (end == std::string::npos) end = p.size();
        std::string cand = (end > start ? p.substr(start, end - start) : ".") + "/" + file;
        if (access(cand.c_str(), X_OK) == 0) return cand;
        start = end + 1;
    }
    return file;
}

int spawn_many(int n, std::vector<char*> argv) {
    const std::string exe = resolve(argv[0]);
    argv.push_back(nullptr);
    std::vector<pid_t> pids;
    pids.reserve(static_cast<std::size_t>(n));
    const long long t0 = mono_ns();
    for (int i = 0; i < n; ++i) {
        pid_t pid;
        int rc = posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv.data(), environ);
        if (rc != 0) {
            std::fprintf(stderr, "posix_spawn %s: %s\n", exe.c_str(), std::strerror(rc));
            for (pid_t p : pids)
                kill(p, SIGKILL);
            return 1;
        }
        pids.push_back(pid);
    }
    const long long elapsed = mono_ns() - t0;
    std::printf("elapsed_ns %lld\n", elapsed);
    for (pid_t p : pids)
        std::printf("%d\n", static_cast<int>(p));
    return 0;
}

// The stamp of the newest line in `file` once it has more than `lines_before` lines.
long long wait_line(const char* file, int lines_before) {
    const long long deadline = mono_ns() + 5'000'000'000LL;
    for (;;) {
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            std::string s;
            char buf[4096];
            ssize_t n;
            while ((n = read(fd, buf, sizeof buf)) > 0)
                s.append(buf, static_cast<std::size_t>(n));
            close(fd);
            int lines = static_cast<int>(std::count(s.begin(), s.end(), '\n'));
            if (lines > lines_before) {
                std::size_t last = s.rfind('\n', s.size() - 2);
                last = last == std::string::npos ? 0 : last + 1;
                const char* sp = std::strchr(s.c_str() + last, ' ');
                return sp ? std::atoll(sp + 1) : -1;
            }
        }
        if (mono_ns() > deadline) return -1;
        timespec nap{0, 20'000};
        nanosleep(&nap, nullptr);
    }
}

int replace_loop(int k, const char* file, const char* stamp_bin) {
    char* argv[] = {const_cast<char*>(stamp_bin), const_cast<char*>(file), nullptr};
    unlink(file);
    pid_t pid;
    if (int rc = posix_spawn(&pid, stamp_bin, nullptr, nullptr, argv, environ); rc != 0) {
        std::fprintf(stderr, "posix_spawn %s: %s\n", stamp_bin, std::strerror(rc));
        return 1;
    }
    int lines = 0;
    if (wait_line(file, lines++) < 0) {
        kill(pid, SIGKILL);
        return 1;
    }
    std::vector<long long> lat;
    for (int i = 0; i < k; ++i) {
        timespec settle{0, 10'000'000};  // let the machine go idle between kills
        nanosleep(&settle, nullptr);
        const long long t0 = mono_ns();
        kill(pid, SIGKILL);
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        if (int rc = posix_spawn(&pid, stamp_bin, nullptr, nullptr, argv, environ); rc != 0) {
            std::fprintf(stderr, "posix_spawn %s: %s\n", stamp_bin, std::strerror(rc));
            return 1;
        }
        const long long stamp = wait_line(file, lines++);
        if (stamp < 0) {
            kill(pid, SIGKILL);
            return 1;
        }
        lat.push_back(stamp - t0);
    }
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    std::vector<long long> sorted = lat;
    std::sort(sorted.begin(), sorted.end());
    std::printf("replace_ns %lld %lld\n", sorted[sorted.size() / 2], sorted.back());
    for (long long v : lat)
        std::printf("%lld\n", v);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 2 && std::strcmp(argv[1], "--replace") == 0) {
        if (argc != 5 || std::atoi(argv[2]) <= 0) {
            std::fprintf(stderr, "usage: bench_floor_spawn --replace K FILE STAMP_BIN\n");
            return 2;
        }
        return replace_loop(std::atoi(argv[2]), argv[3], argv[4]);
    }
    if (argc < 2 || std::atoi(argv[1]) <= 0) {
        std::fprintf(stderr, "usage: bench_floor_spawn N [CMD ARGS...]\n");
        return 2;
    }
    std::vector<char*> cmd;
    static char sleep_s[] = "sleep", arg_s[] = "100000";
    if (argc > 2) {
        cmd.assign(argv + 2, argv + argc);
    } else {
        cmd = {sleep_s, arg_s};
    }
    return spawn_many(std::atoi(argv[1]), cmd);
}
