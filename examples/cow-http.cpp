// cow-http: a tiny HTTP/1.1 server for the demo, the tests and the benchmarks of shared listening
// sockets and sd_notify readiness.
//
// usage: cow-http [--port N] [--ready-file PATH] [--startup-delay MS] [--fail-start]
//
// Sockets. It takes its listening sockets the systemd way: when LISTEN_PID equals its pid and
// LISTEN_FDS >= 1, it serves every listening stream socket among fds 3 .. 3+LISTEN_FDS-1 (fd 3
// is SD_LISTEN_FDS_START). With `--port N` it also binds 127.0.0.1:N itself, with SO_REUSEPORT
// so that several copies can run under another supervisor; beside inherited sockets that is a
// port of its own, for a probe (`--port $COWHERD_PROBE_PORT`). Inherited sockets are put in
// non-blocking mode: O_NONBLOCK lives on the open file description, which every worker shares,
// so accept() may and does return EAGAIN when a sibling won the race.
//
// Requests. Every request (any method, any path) gets `200 OK` and the body
// `pid <pid> worker <COWHERD_WORKER> <COW_HTTP_TAG>\n`. `GET /slow?ms=N` waits N ms (at most
// 5000) before answering. The request is read up to the end of its headers within 5 s (else 408)
// and 16 KiB (else 431); only the request line and a `Connection: close` header are looked at.
// An HTTP/1.1 connection without `Connection: close` is kept open for the next request (idle for
// at most 15 s), as a real server's would be, so that keep-alive clients can be measured; an
// HTTP/1.0 request, or any request once draining, gets `Connection: close`.
//
// Stopping. SIGTERM or SIGINT stops accepting at once: an inherited socket is simply no longer
// polled, so its queue stays with the siblings; a socket of its own (--port) has its queue
// accepted before it is closed. The requests already accepted are finished, then it exits 0.
//
// Readiness. With NOTIFY_SOCKET set it sends "READY=1\nSTATUS=serving on fd 3" once it polls
// its sockets, "WATCHDOG=1" every WATCHDOG_USEC/2 if WATCHDOG_USEC is set (and WATCHDOG_PID, when
// set, is its pid), and "STOPPING=1" when it starts draining.
//
// Readiness without sd_notify: --ready-file PATH creates PATH once it serves (and removes it
// when it stops), for a readiness probe such as `exec: [test, -e, /run/web/ready.{pid}]`.
//
// Testing knobs: --startup-delay MS waits MS ms (serving nothing) before it polls its sockets and
// sends READY=1; --fail-start exits 1 instead of becoming ready (after the delay, if any): a
// broken new version.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

namespace {

constexpr int kListenFdsStart = 3;           // SD_LISTEN_FDS_START
constexpr int64_t kReadTimeoutMs = 5000;     // to receive the whole request head
constexpr int64_t kWriteTimeoutMs = 5000;    // to send the response
constexpr int64_t kKeepAliveMs = 15000;      // idle between requests on one connection
constexpr int64_t kLingerMs = 1000;          // to see the client's EOF after our response
constexpr size_t kLingerMaxBytes = 1 << 20;  // unread request bytes we discard before closing
constexpr size_t kMaxHead = 16 * 1024;       // request line + headers
constexpr int64_t kMaxSlowMs = 5000;
constexpr int kAcceptBatch = 64;  // accepts per wakeup and socket, so siblings get a share

int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void log(const std::string& msg) {
    std::string line = "cow-http[" + std::to_string(getpid()) + "]: " + msg + "\n";
    (void)!write(STDERR_FILENO, line.data(), line.size());
}

// Strict unsigned decimal: digits only, no sign, no blanks, no leading zero, no overflow.
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

// The sd_notify protocol: one datagram on an AF_UNIX socket named by NOTIFY_SOCKET, a path or,
// with a leading '@', an abstract name. The receiver learns our pid from SCM_CREDENTIALS.
bool sd_notify(const std::string& msg) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@')) return false;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    size_t len = std::strlen(path);
    if (len < 2 || len >= sizeof sa.sun_path) return false;
    std::memcpy(sa.sun_path, path, len);
    if (path[0] == '@') sa.sun_path[0] = '\0';  // abstract: no trailing NUL counted
    auto salen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ssize_t n =
        sendto(fd, msg.data(), msg.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), salen);
    int err = errno;
    close(fd);
    if (n != static_cast<ssize_t>(msg.size())) {
        log("sd_notify: " + std::string(std::strerror(err)));
        return false;
    }
    return true;
}

// WATCHDOG_USEC/2 in ms, or 0 when the watchdog is off (as sd_watchdog_enabled decides).
int64_t watchdog_interval_ms() {
    uint64_t usec = 0, pid = 0;
    if (!parse_u64(std::getenv("WATCHDOG_USEC"), UINT64_MAX, usec) || usec == 0) return 0;
    const char* wp = std::getenv("WATCHDOG_PID");
    if (wp && (!parse_u64(wp, INT32_MAX, pid) || pid != static_cast<uint64_t>(getpid()))) return 0;
    return std::max<int64_t>(1, static_cast<int64_t>(usec / 2000));
}

std::string describe_socket(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    char buf[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&ss);
        inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
        return std::string("tcp ") + buf + ":" + std::to_string(ntohs(in->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
        inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
        return std::string("tcp [") + buf + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    if (ss.ss_family == AF_UNIX) {
        auto* un = reinterpret_cast<sockaddr_un*>(&ss);
        size_t n =
            len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
        if (n == 0) return "unix (unnamed)";
        if (un->sun_path[0] == '\0') return "unix @" + std::string(un->sun_path + 1, n - 1);
        return "unix " + std::string(un->sun_path, strnlen(un->sun_path, n));
    }
    return "family " + std::to_string(ss.ss_family);
}

struct Listener {
    int fd;
    bool own;  // bound by us (--port): its accept queue is ours alone
    std::string desc;
};

// The systemd way. Returns false when the environment is not for us.
bool inherited_listeners(std::vector<Listener>& out) {
    uint64_t pid = 0, n = 0;
    if (!parse_u64(std::getenv("LISTEN_PID"), INT32_MAX, pid) ||
        pid != static_cast<uint64_t>(getpid()))
        return false;
    if (!parse_u64(std::getenv("LISTEN_FDS"), 4096, n) || n < 1) return false;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    for (int fd = kListenFdsStart; fd < kListenFdsStart + static_cast<int>(n); ++fd) {
        int type = 0, acc = 0;
        socklen_t l1 = sizeof type, l2 = sizeof acc;
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
            log("fd " + std::to_string(fd) + ": " + std::strerror(errno));
            continue;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l1) != 0 || type != SOCK_STREAM ||
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l2) != 0 || !acc) {
            log("fd " + std::to_string(fd) + " is not a listening stream socket, ignored");
            continue;
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) continue;
        out.push_back({fd, false, "fd " + std::to_string(fd) + " (" + describe_socket(fd) + ")"});
    }
    return true;
}

int bind_port(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 1024) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

enum class State { Reading, Waiting, Writing, Lingering, Closed };

struct Conn {
    int fd = -1;
    State state = State::Reading;
    std::string in;
    std::string out;
    size_t off = 0;        // of `out` already sent
    size_t discarded = 0;  // while lingering
    int64_t deadline = 0;  // of the current state
    int64_t wake = 0;      // for State::Waiting
    bool head = false;     // HEAD request: no body
    bool keep = false;     // answer this request with keep-alive, then read the next one
    bool idle = false;     // kept alive, and no byte of the next request yet
    size_t consumed = 0;   // of `in`: the current request's head
};

bool g_draining = false;
uint64_t g_requests = 0;  // answered or being answered, over every connection  // no more
                          // keep-alive: every answer says `Connection: close`

std::string g_body;  // "pid P worker W TAG\n", fixed for the life of the process

std::string response(int code, const char* reason, const std::string& body, bool head,
                     bool keep = false) {
    std::string r =
        "HTTP/1.1 " + std::to_string(code) + " " + reason +
        "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
        (keep ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
    if (!head) r += body;
    return r;
}

void close_conn(Conn& c) {
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
    c.state = State::Closed;
}

void handle_request(Conn& c, size_t end, int64_t now);

void try_write(Conn& c, int64_t now) {
    while (c.off < c.out.size()) {
        ssize_t n = send(c.fd, c.out.data() + c.off, c.out.size() - c.off, MSG_NOSIGNAL);
        if (n > 0) {
            c.off += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;  // poll for POLLOUT
        } else {
            close_conn(c);
            return;
        }
    }
    if (c.keep && !g_draining) {
        c.in.erase(0, c.consumed);
        c.out.clear();
        c.state = State::Reading;
        c.idle = c.in.empty();
        c.deadline = now + (c.idle ? kKeepAliveMs : kReadTimeoutMs);
        if (size_t end = c.in.find("\r\n\r\n"); end != std::string::npos && end + 4 <= kMaxHead)
            handle_request(c, end, now);  // pipelined: the next head is already in
        return;
    }
    // Sent. Close our side, then read until the client's EOF before close(): closing with
    // unread request bytes would send an RST that can destroy the response in flight.
    shutdown(c.fd, SHUT_WR);
    c.state = State::Lingering;
    c.deadline = now + kLingerMs;
}

void respond(Conn& c, std::string resp, int64_t now) {
    c.out = std::move(resp);
    c.off = 0;
    c.state = State::Writing;
    c.deadline = now + kWriteTimeoutMs;
    try_write(c, now);
}

// The request head is complete in c.in[0, end). Only the request line is looked at.
void handle_request(Conn& c, size_t end, int64_t now) {
    std::string_view head(c.in.data(), end);
    std::string_view line = head.substr(0, head.find("\r\n"));
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == 0 || sp2 == std::string_view::npos || line.substr(sp2 + 1, 5) != "HTTP/") {
        respond(c, response(400, "Bad Request", "bad request\n", false), now);
        return;
    }
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    c.head = method == "HEAD";
    ++g_requests;
    c.consumed = end + 4;
    std::string lower(head);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    c.keep = !g_draining && line.substr(sp2 + 1) == "HTTP/1.1" &&
             lower.find("\r\nconnection: close") == std::string::npos;
    size_t q = target.find('?');
    std::string_view path = target.substr(0, q);
    int64_t slow = 0;
    if (path == "/slow" && q != std::string_view::npos) {
        std::string_view query = target.substr(q + 1);
        while (!query.empty()) {
            size_t amp = query.find('&');
            std::string_view kv = query.substr(0, amp);
            if (kv.substr(0, 3) == "ms=") {
                slow = 0;
                for (char ch : kv.substr(3)) {
                    if (ch < '0' || ch > '9') break;
                    slow = std::min<int64_t>(slow * 10 + (ch - '0'), kMaxSlowMs);
                }
            }
            if (amp == std::string_view::npos) break;
            query.remove_prefix(amp + 1);
        }
    }
    if (slow > 0) {
        c.state = State::Waiting;
        c.wake = now + slow;
        return;
    }
    respond(c, response(200, "OK", g_body, c.head, c.keep && !g_draining), now);
}

void on_readable(Conn& c, int64_t now) {
    char buf[8192];
    for (;;) {
        ssize_t n = recv(c.fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {  // EOF or error: the client is gone
            close_conn(c);
            return;
        }
        if (c.state == State::Lingering) {
            c.discarded += static_cast<size_t>(n);
            if (c.discarded > kLingerMaxBytes) close_conn(c);
            if (c.state == State::Closed) return;
            continue;
        }
        if (c.idle) {  // the next request begins: it has the head's time from now
            c.idle = false;
            c.deadline = now + kReadTimeoutMs;
        }
        size_t from = c.in.size() >= 3 ? c.in.size() - 3 : 0;
        c.in.append(buf, static_cast<size_t>(n));
        size_t end = c.in.find("\r\n\r\n", from);
        if (end != std::string::npos && end + 4 <= kMaxHead) {
            handle_request(c, end, now);
            return;
        }
        if (c.in.size() >= kMaxHead) {
            respond(c,
                    response(431, "Request Header Fields Too Large", "request too large\n", false),
                    now);
            return;
        }
    }
}

void raise_nofile() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 65536);
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

size_t max_conns() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < 64) return 16;
    return std::min<size_t>(static_cast<size_t>(rl.rlim_cur) - 32, 16384);
}

[[noreturn]] void usage(const char* msg) {
    std::fprintf(stderr,
                 "cow-http: %s\nusage: cow-http [--port N] [--ready-file PATH] [--startup-delay "
                 "MS] [--fail-start]\n",
                 msg);
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    uint64_t port = 0, delay = 0;
    std::string ready_file;
    bool have_port = false, fail_start = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--ready-file" && i + 1 < argc) {
            ready_file = argv[++i];
            continue;
        }
        if (a == "--port" && i + 1 < argc) {
            if (!parse_u64(argv[++i], 65535, port)) usage("bad --port");
            have_port = true;
        } else if (a == "--startup-delay" && i + 1 < argc) {
            if (!parse_u64(argv[++i], 3600 * 1000, delay)) usage("bad --startup-delay");
        } else if (a == "--fail-start") {
            fail_start = true;
        } else if (a == "-h" || a == "--help") {
            std::printf(
                "usage: cow-http [--port N] [--ready-file PATH] [--startup-delay MS] "
                "[--fail-start]\n");
            return 0;
        } else {
            usage(("unknown argument: " + a).c_str());
        }
    }

    const char* worker = std::getenv("COWHERD_WORKER");
    const char* tag = std::getenv("COW_HTTP_TAG");
    g_body = "pid " + std::to_string(getpid()) + " worker " + (worker && *worker ? worker : "-") +
             " " + (tag ? tag : "") + "\n";

    // Claim the inherited fds before this process opens any fd of its own, which could land on
    // a number LISTEN_FDS names but the parent failed to pass.
    std::vector<Listener> listeners;
    bool inherited = inherited_listeners(listeners);

    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) return 1;
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) return 1;
    raise_nofile();

    if (!inherited && !have_port) usage("no LISTEN_FDS for this pid and no --port");
    if (have_port) {
        int fd = bind_port(static_cast<uint16_t>(port));
        if (fd < 0) {
            log("bind 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
            return 1;
        }
        listeners.push_back({fd, true, describe_socket(fd)});
    }
    if (listeners.empty()) {
        log("no usable listening socket among LISTEN_FDS");
        return 1;
    }

    // Startup delay: serve nothing, but still honour SIGTERM.
    bool draining = false;
    int64_t t_ready = now_ms() + static_cast<int64_t>(delay);
    for (int64_t now = now_ms(); now < t_ready && !draining; now = now_ms()) {
        pollfd p{sfd, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(t_ready - now)) > 0) {
            signalfd_siginfo si{};
            while (read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si))
                draining = true;
        }
    }
    if (draining) {
        log("stopped before becoming ready");
        return 0;
    }
    if (fail_start) {
        log("--fail-start: exiting 1 without READY");
        return 1;
    }

    std::string where;
    for (const auto& l : listeners)
        where += (where.empty() ? "" : ", ") + l.desc;
    log("serving on " + where);
    if (!ready_file.empty()) {
        int rf = open(ready_file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (rf >= 0) close(rf);
    }
    if (listeners[0].own) {
        sd_notify("READY=1\nSTATUS=serving on " + listeners[0].desc);
    } else {
        std::string fds = "fd 3";
        if (listeners.size() > 1) fds = "fds 3-" + std::to_string(listeners.back().fd);
        sd_notify("READY=1\nSTATUS=serving on " + fds);
    }
    int64_t wd_every = watchdog_interval_ms();
    int64_t wd_next = wd_every ? now_ms() + wd_every : 0;

    const size_t cap = max_conns();
    std::vector<Conn> conns;
    std::vector<pollfd> pfds;
    // Per pollfd: kSignal for the signalfd, -1 - i for listener i, else a connection index.
    constexpr int kSignal = std::numeric_limits<int>::min();
    std::vector<int> owner;
    int64_t accept_pause_until = 0;
    uint64_t served = 0;

    auto accept_from = [&](Listener& l, int64_t now, bool all) {
        for (int k = 0; all || k < kAcceptBatch; ++k) {
            if (conns.size() >= cap) return;
            int fd = accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                    accept_pause_until = now + 100;
                return;  // EAGAIN: a sibling took it, or the queue is empty
            }
            Conn c;
            c.fd = fd;
            c.deadline = now + kReadTimeoutMs;
            conns.push_back(std::move(c));
            ++served;
        }
    };

    auto start_draining = [&](int64_t now) {
        if (draining) return;
        draining = true;
        g_draining = true;
        sd_notify("STOPPING=1\nSTATUS=draining");
        for (auto& c : conns)  // kept alive but between requests: nothing to finish
            if (c.state == State::Reading && c.idle) close_conn(c);
        // An inherited socket stays open for the siblings (and its queue with them); we just
        // stop polling it. A socket of our own goes away when we do, and so would the
        // connections in its queue: accept them all first, then close it so the kernel sends
        // new ones to the other SO_REUSEPORT sockets. (A connection that lands between the last
        // accept and the close is lost unless net.ipv4.tcp_migrate_req=1.)
        for (auto& l : listeners) {
            if (!l.own) continue;
            accept_from(l, now, true);
            close(l.fd);
            l.fd = -1;
        }
        log("draining " + std::to_string(conns.size()) + " connection(s)");
    };

    for (;;) {
        int64_t now = now_ms();
        if (draining && conns.empty()) break;
        int64_t next = INT64_MAX;
        pfds.clear();
        owner.clear();
        pfds.push_back({sfd, POLLIN, 0});
        owner.push_back(kSignal);
        bool accepting = !draining && conns.size() < cap && now >= accept_pause_until;
        if (!draining && now < accept_pause_until) next = accept_pause_until;
        for (size_t i = 0; accepting && i < listeners.size(); ++i) {
            pfds.push_back({listeners[i].fd, POLLIN, 0});
            owner.push_back(-1 - static_cast<int>(i));
        }
        for (size_t i = 0; i < conns.size(); ++i) {
            Conn& c = conns[i];
            if (c.state == State::Waiting) {
                next = std::min(next, c.wake);
                continue;
            }
            next = std::min(next, c.deadline);
            short ev = c.state == State::Writing ? POLLOUT : POLLIN;
            pfds.push_back({c.fd, ev, 0});
            owner.push_back(static_cast<int>(i));
        }
        if (wd_every) next = std::min(next, wd_next);
        int timeout = -1;
        if (next != INT64_MAX)
            timeout = static_cast<int>(std::clamp<int64_t>(next - now, 0, 60000));
        int r = poll(pfds.data(), pfds.size(), timeout);
        if (r < 0 && errno != EINTR) {
            log(std::string("poll: ") + std::strerror(errno));
            return 1;
        }
        now = now_ms();
        for (size_t k = 0; r > 0 && k < pfds.size(); ++k) {
            if (!pfds[k].revents) continue;
            int o = owner[k];
            if (o == kSignal) {
                signalfd_siginfo si{};
                while (read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si))
                    start_draining(now);
            } else if (o < 0) {
                if (!draining) accept_from(listeners[static_cast<size_t>(-1 - o)], now, false);
            } else {
                Conn& c = conns[static_cast<size_t>(o)];
                if (c.state == State::Writing) {
                    try_write(c, now);
                } else if (c.state == State::Reading || c.state == State::Lingering) {
                    on_readable(c, now);
                }
            }
        }
        for (auto& c : conns) {
            if (c.state == State::Waiting && now >= c.wake) {
                respond(c, response(200, "OK", g_body, c.head, c.keep && !g_draining), now);
            } else if (c.state != State::Waiting && c.state != State::Closed && now >= c.deadline) {
                if (c.state == State::Reading && c.idle) {
                    close_conn(c);  // a kept-alive connection nobody used again
                } else if (c.state == State::Reading) {
                    respond(c, response(408, "Request Timeout", "request timeout\n", false), now);
                } else {
                    close_conn(c);  // stuck writer, or a client that never closes
                }
            }
        }
        std::erase_if(conns, [](const Conn& c) { return c.state == State::Closed; });
        if (wd_every && now >= wd_next) {
            sd_notify("WATCHDOG=1");
            wd_next = now + wd_every;
        }
    }
    log("drained, exiting after " + std::to_string(served) + " connection(s) and " +
        std::to_string(g_requests) + " request(s)");
    if (!ready_file.empty()) unlink(ready_file.c_str());
    return 0;
}
