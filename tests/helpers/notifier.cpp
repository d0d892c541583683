// A worker for readiness and watchdog tests: speaks the sd_notify protocol on NOTIFY_SOCKET.
//
// usage: notifier MODE [ARGS]
//   ready-after MS               READY=1 and STATUS=ready after MS ms
//   ready-on-usr1                READY=1 and STATUS=ready once it receives SIGUSR1
//   never-ready                  never sends READY=1
//   ready-then-stop-pinging MS   READY=1 at once; WATCHDOG=1 pings only during the first MS ms
//   extend US MS                 EXTEND_TIMEOUT_USEC=US at once, READY=1 after MS ms
//   status TEXT                  READY=1 and STATUS=TEXT at once
//   child-ready [MS]             forks a child (a descendant of the worker) that sends READY=1
//                                and stays until SIGTERM, or exits MS ms after sending; the
//                                parent sends nothing and waits
//   impostor                     sends nothing and waits; the test speaks from outside
// After its READY=1 (any mode but never-ready and impostor) it sends WATCHDOG=1 every
// WATCHDOG_USEC/2 when WATCHDOG_USEC is set and WATCHDOG_PID, if set, is its own pid.
// Every datagram it sends is logged on stderr. SIGTERM or SIGINT: exit 0 (the parent of
// child-ready first stops and reaps its child). Bad usage exits 64.
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace {

constexpr int64_t kNever = INT64_MAX;

int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void log(const std::string& msg) {
    std::string line = "notifier[" + std::to_string(getpid()) + "]: " + msg + "\n";
    (void)!write(STDERR_FILENO, line.data(), line.size());
}

bool parse_u64(const char* s, uint64_t max, uint64_t& out) {
    if (!s || !*s || (s[0] == '0' && s[1] != '\0')) return false;
    uint64_t v = 0;
    for (const char* p = s; *p; ++p) {
        if (*p < '0' || *p > '9') return false;
        uint64_t d = static_cast<uint64_t>(*p - '0');
        if (v > (max - d) / 10) return false;
        v = v * 10 + d;
    }
    out = v;
    return true;
}

// One datagram to NOTIFY_SOCKET: a path, or an abstract name when it starts with '@'.
bool sd_notify(const std::string& msg) {
    std::string shown = msg;
    for (auto& ch : shown)
        if (ch == '\n') ch = ' ';
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@')) {
        log("NOTIFY_SOCKET unset or invalid, not sent: " + shown);
        return false;
    }
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    size_t len = std::strlen(path);
    if (len < 2 || len >= sizeof sa.sun_path) return false;
    std::memcpy(sa.sun_path, path, len);
    if (path[0] == '@') sa.sun_path[0] = '\0';
    auto salen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ssize_t n =
        sendto(fd, msg.data(), msg.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), salen);
    int err = errno;
    close(fd);
    bool ok = n == static_cast<ssize_t>(msg.size());
    log((ok ? "sent: " : "send failed (" + std::string(std::strerror(err)) + "): ") + shown);
    return ok;
}

int64_t watchdog_interval_ms() {
    uint64_t usec = 0, pid = 0;
    if (!parse_u64(std::getenv("WATCHDOG_USEC"), UINT64_MAX, usec) || usec == 0) return 0;
    const char* wp = std::getenv("WATCHDOG_PID");
    if (wp && (!parse_u64(wp, INT32_MAX, pid) || pid != static_cast<uint64_t>(getpid()))) return 0;
    return usec < 2000 ? 1 : static_cast<int64_t>(usec / 2000);
}

// What one process does, in ms since its start.
struct Plan {
    std::string first;           // sent at once, unless empty
    int64_t ready_at = kNever;   // when to send `ready`
    bool ready_on_usr1 = false;  // or when SIGUSR1 arrives
    std::string ready = "READY=1\nSTATUS=ready";
    int64_t ping_until = kNever;  // WATCHDOG=1 pings stop here
    int64_t exit_at = kNever;     // exit 0 here
};

pid_t g_child = 0;

[[noreturn]] void finish() {
    if (g_child > 0) {
        kill(g_child, SIGTERM);
        while (waitpid(g_child, nullptr, 0) < 0 && errno == EINTR) {
        }
    }
    log("exiting");
    std::exit(0);
}

[[noreturn]] void run(const Plan& plan, const sigset_t& mask) {
    const int64_t t0 = now_ms();
    const int64_t wd = watchdog_interval_ms();
    int64_t ready_at = plan.ready_at;
    if (!plan.first.empty()) sd_notify(plan.first);
    bool ready_sent = false;
    int64_t next_ping = kNever;
    for (;;) {
        int64_t t = now_ms() - t0;
        if (!ready_sent && t >= ready_at) {
            sd_notify(plan.ready);
            ready_sent = true;
            if (wd) next_ping = t + wd;
        }
        if (t >= next_ping) {
            if (t < plan.ping_until) {
                sd_notify("WATCHDOG=1");
                next_ping = t + wd;
            } else {
                log("watchdog pings stop now");
                next_ping = kNever;
            }
        }
        if (t >= plan.exit_at) {
            log("exiting as planned");
            std::exit(0);
        }
        int64_t next = std::min({ready_sent ? kNever : ready_at, next_ping, plan.exit_at});
        timespec ts{};
        timespec* tsp = nullptr;
        if (next != kNever) {
            int64_t d = next - (now_ms() - t0);
            if (d < 0) d = 0;
            ts.tv_sec = static_cast<time_t>(d / 1000);
            ts.tv_nsec = static_cast<long>(d % 1000) * 1000000;
            tsp = &ts;
        }
        siginfo_t si{};
        int sig = sigtimedwait(&mask, &si, tsp);
        if (sig == SIGTERM || sig == SIGINT) finish();
        if (sig == SIGUSR1 && plan.ready_on_usr1) ready_at = 0;
        if (sig == SIGCHLD) {
            int st = 0;
            pid_t p;
            while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
                log("child " + std::to_string(p) + " exited");
                if (p == g_child) g_child = 0;
            }
        }
    }
}

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: notifier MODE [ARGS]\n"
                 "  ready-after MS | ready-on-usr1 | never-ready | ready-then-stop-pinging MS |\n"
                 "  extend US MS | status TEXT | child-ready [MS] | impostor\n");
    std::exit(64);
}

uint64_t number(const char* s) {
    uint64_t v = 0;
    if (!parse_u64(s, 24ULL * 3600 * 1000 * 1000, v)) usage();
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) usage();
    // Signals are taken synchronously; block them before anything can arrive.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, nullptr);

    std::string mode = argv[1];
    int nargs = argc - 2;
    Plan plan;
    if (mode == "ready-after" && nargs == 1) {
        plan.ready_at = static_cast<int64_t>(number(argv[2]));
    } else if (mode == "ready-on-usr1" && nargs == 0) {
        plan.ready_on_usr1 = true;
    } else if (mode == "never-ready" && nargs == 0) {
    } else if (mode == "ready-then-stop-pinging" && nargs == 1) {
        plan.ready_at = 0;
        plan.ping_until = static_cast<int64_t>(number(argv[2]));
        if (!watchdog_interval_ms()) log("WATCHDOG_USEC not set (or not for us): no pings at all");
    } else if (mode == "extend" && nargs == 2) {
        plan.first = "EXTEND_TIMEOUT_USEC=" + std::to_string(number(argv[2]));
        plan.ready_at = static_cast<int64_t>(number(argv[3]));
    } else if (mode == "status" && nargs == 1) {
        plan.ready_at = 0;
        plan.ready = std::string("READY=1\nSTATUS=") + argv[2];
    } else if (mode == "child-ready" && nargs <= 1) {
        int64_t linger = nargs == 1 ? static_cast<int64_t>(number(argv[2])) : kNever;
        pid_t pid = fork();
        if (pid < 0) {
            log(std::string("fork: ") + std::strerror(errno));
            return 1;
        }
        if (pid == 0) {
            Plan child;
            child.ready_at = 0;
            child.ready = "READY=1\nSTATUS=ready (sent by child " + std::to_string(getpid()) + ")";
            child.exit_at = linger;
            run(child, mask);
        }
        g_child = pid;
        log("forked child " + std::to_string(pid) + " to send READY=1");
    } else if (mode == "impostor" && nargs == 0) {
        const char* ns = std::getenv("NOTIFY_SOCKET");
        log(std::string("impostor: silent; NOTIFY_SOCKET=") + (ns ? ns : "(unset)"));
    } else {
        usage();
    }
    run(plan, mask);
}
