// Checks the socket-activation contract the way systemd's sd_listen_fds() and
// sd_listen_fds_with_names() read it, and writes what it found to the file named by argv[1].
//
// usage: sdcheck REPORT [--stay]
//
// The contract: LISTEN_PID is a positive decimal equal to getpid(); LISTEN_FDS is a positive
// decimal count n; fds 3 .. 3+n-1 (SD_LISTEN_FDS_START) are open, and like sd_listen_fds() we
// set FD_CLOEXEC on them; LISTEN_FDNAMES, when set, splits on ':' (empty fields kept) into
// exactly n names, each at most 255 printable ASCII characters without ':' (systemd's
// fdname_is_valid; the empty name is allowed); when unset every name reads "unknown". On top of
// systemd's rules, no other fd above 2 may be open. Numbers must be canonical decimal (no sign,
// blank or leading zero) so that every parser reads them alike.
//
// The report has one key=value per line, written atomically (tmp file + rename):
//   ok=1|0                     error=...  (the problems, "; "-separated, empty when ok)
//   pid=  listen_pid=  listen_fds=  listen_fdnames=   (raw environment, "" when unset)
//   env_listen_pid_matches=1|0  n=  names=a:b  names_set=1|0
//   fd3=tcp 127.0.0.1:8000 listening     fd4=unix /path listening     fd5=udp6 [::1]:53 bound
//   fd3_nonblock=0|1  (per passed fd: O_NONBLOCK on the open file description)
//   extra_fds=5,7  (other open fds above 2; must be empty)   stdio=0,1,2 (which of them are open)
// Socket kinds: tcp/udp (IPv4), tcp6/udp6, unix, unix-dgram, unix-seqpacket; states: listening,
// not-listening (stream), bound (datagram). A non-socket reads notsock:file|fifo|chr|dir|...;
// a closed fd reads badfd (and makes ok=0).
//
// Exits 0 if ok, else 1; with --stay it waits for SIGTERM (then exits 0) instead. It exits 3 if
// the report cannot be written, 64 on bad usage.
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

constexpr int kListenFdsStart = 3;  // SD_LISTEN_FDS_START
constexpr size_t kFdNameMax = 255;  // FDNAME_MAX

// Canonical positive-or-zero decimal, at most `max`.
bool parse_dec(const char* s, long long max, long long& out) {
    if (!s || !*s || (s[0] == '0' && s[1] != '\0')) return false;
    long long v = 0;
    for (const char* p = s; *p; ++p) {
        if (*p < '0' || *p > '9') return false;
        int d = *p - '0';
        if (v > (max - d) / 10) return false;
        v = v * 10 + d;
    }
    out = v;
    return true;
}

// Keep one value on one line of the report.
std::string clean(const char* s) {
    std::string out;
    for (const char* p = s ? s : ""; *p; ++p)
        out += (static_cast<unsigned char>(*p) < 0x20 || *p == 0x7f) ? '?' : *p;
    return out;
}

bool fdname_is_valid(const std::string& s) {
    if (s.size() > kFdNameMax) return false;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c < ' ' || c >= 127 || c == ':') return false;
    }
    return true;
}

std::string address(const sockaddr_storage& ss, socklen_t len) {
    char buf[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
        inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
        return std::string(buf) + ":" + std::to_string(ntohs(in->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
        inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
        return "[" + std::string(buf) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    if (ss.ss_family == AF_UNIX) {
        const auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
        size_t off = offsetof(sockaddr_un, sun_path);
        size_t n = len > off ? len - off : 0;
        if (n == 0) return "(unnamed)";
        if (un->sun_path[0] == '\0')
            return clean(("@" + std::string(un->sun_path + 1, n - 1)).c_str());
        return clean(std::string(un->sun_path, strnlen(un->sun_path, n)).c_str());
    }
    return "?";
}

// "tcp 127.0.0.1:8000 listening", or "badfd" when the fd is not open.
std::string describe(int fd, bool& valid) {
    struct stat st {};
    valid = fstat(fd, &st) == 0;
    if (!valid) return "badfd";
    if (!S_ISSOCK(st.st_mode)) {
        const char* kind = S_ISREG(st.st_mode)    ? "file"
                           : S_ISFIFO(st.st_mode) ? "fifo"
                           : S_ISCHR(st.st_mode)  ? "chr"
                           : S_ISDIR(st.st_mode)  ? "dir"
                           : S_ISBLK(st.st_mode)  ? "blk"
                           : S_ISLNK(st.st_mode)  ? "lnk"
                                                  : "other";
        return std::string("notsock:") + kind;
    }
    int domain = -1, type = -1, acc = 0;
    socklen_t l = sizeof domain;
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l);
    l = sizeof type;
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l);
    l = sizeof acc;
    bool has_acc = getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) == 0;
    std::string kind;
    if (domain == AF_INET || domain == AF_INET6) {
        const char* six = domain == AF_INET6 ? "6" : "";
        kind = type == SOCK_STREAM  ? std::string("tcp") + six
               : type == SOCK_DGRAM ? std::string("udp") + six
                                    : "inet" + std::string(six) + "-type" + std::to_string(type);
    } else if (domain == AF_UNIX) {
        kind = type == SOCK_STREAM      ? "unix"
               : type == SOCK_DGRAM     ? "unix-dgram"
               : type == SOCK_SEQPACKET ? "unix-seqpacket"
                                        : "unix-type" + std::to_string(type);
    } else {
        kind = "domain" + std::to_string(domain) + "-type" + std::to_string(type);
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    std::string addr = "?";
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) addr = address(ss, len);
    std::string state;
    if (type == SOCK_DGRAM)
        state = "bound";
    else
        state = has_acc && acc ? "listening" : "not-listening";
    return kind + " " + addr + " " + state;
}

// Open fds, listed before this program opens any of its own.
std::vector<int> open_fds() {
    std::vector<int> fds;
    DIR* d = opendir("/proc/self/fd");
    if (!d) return fds;
    int self = dirfd(d);
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        int fd = std::atoi(e->d_name);
        if (fd != self) fds.push_back(fd);
    }
    closedir(d);
    return fds;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i)
        out += (i ? sep : "") + v[i];
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> fds_at_start = open_fds();
    if (argc < 2 || argc > 3 || (argc == 3 && std::strcmp(argv[2], "--stay") != 0)) {
        std::fprintf(stderr, "usage: sdcheck REPORT [--stay]\n");
        return 64;
    }
    bool stay = argc == 3;

    std::vector<std::string> errors;
    std::vector<std::string> lines;
    const pid_t pid = getpid();
    const char* e_pid = std::getenv("LISTEN_PID");
    const char* e_fds = std::getenv("LISTEN_FDS");
    const char* e_names = std::getenv("LISTEN_FDNAMES");

    // LISTEN_PID: is this for us?
    bool pid_matches = false;
    long long lpid = 0;
    if (!e_pid)
        errors.push_back("LISTEN_PID not set");
    else if (!parse_dec(e_pid, INT_MAX, lpid) || lpid <= 0)
        errors.push_back("LISTEN_PID is not a positive decimal: '" + clean(e_pid) + "'");
    else if (lpid != pid)
        errors.push_back("LISTEN_PID=" + std::to_string(lpid) + " but pid is " +
                         std::to_string(pid));
    else
        pid_matches = true;

    // LISTEN_FDS: a positive count, with 3+n not overflowing.
    long long n = 0;
    if (!e_fds)
        errors.push_back("LISTEN_FDS not set");
    else if (!parse_dec(e_fds, INT_MAX - kListenFdsStart, n) || n <= 0)
        errors.push_back("LISTEN_FDS is not a positive decimal: '" + clean(e_fds) + "'");

    // The fds themselves. sd_listen_fds() sets FD_CLOEXEC, and fails if it cannot (EBADF).
    std::set<int> passed;
    std::vector<std::string> fd_lines;
    for (int fd = kListenFdsStart; fd < kListenFdsStart + n; ++fd) {
        passed.insert(fd);
        bool valid = false;
        std::string what = describe(fd, valid);
        fd_lines.push_back("fd" + std::to_string(fd) + "=" + what);
        if (!valid) {
            errors.push_back("fd " + std::to_string(fd) + " is not open");
            continue;
        }
        int fl = fcntl(fd, F_GETFL);
        fd_lines.push_back("fd" + std::to_string(fd) +
                           "_nonblock=" + (fl >= 0 && (fl & O_NONBLOCK) ? "1" : "0"));
        if (pid_matches) {
            int fdfl = fcntl(fd, F_GETFD);
            if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) != 0)
                errors.push_back("fd " + std::to_string(fd) +
                                 ": cannot set FD_CLOEXEC: " + std::strerror(errno));
        }
        if (fd > 1024) break;  // a sanity bound on the report, far past any real pool
    }

    // LISTEN_FDNAMES: split on ':' without coalescing, so "a::b" is three names and "" is none.
    std::vector<std::string> names;
    if (e_names) {
        std::string s = e_names;
        if (!s.empty()) {
            size_t start = 0;
            for (;;) {
                size_t colon = s.find(':', start);
                names.push_back(s.substr(start, colon - start));
                if (colon == std::string::npos) break;
                start = colon + 1;
            }
        }
        if (n > 0 && static_cast<long long>(names.size()) != n)
            errors.push_back("LISTEN_FDNAMES has " + std::to_string(names.size()) +
                             " name(s) for " + std::to_string(n) + " fd(s)");
        for (const auto& nm : names)
            if (!fdname_is_valid(nm))
                errors.push_back("invalid fd name '" + clean(nm.c_str()) + "'");
    } else {
        for (long long i = 0; i < n && i < 1024; ++i)
            names.push_back("unknown");
    }

    // Anything else inherited is a leak.
    std::vector<std::string> extra, stdio;
    for (int fd : fds_at_start) {
        if (fd <= 2)
            stdio.push_back(std::to_string(fd));
        else if (!passed.count(fd))
            extra.push_back(std::to_string(fd));
    }
    if (!extra.empty()) errors.push_back("unexpected open fds: " + join(extra, ","));

    bool ok = errors.empty();
    lines.push_back(std::string("ok=") + (ok ? "1" : "0"));
    lines.push_back("error=" + clean(join(errors, "; ").c_str()));
    lines.push_back("pid=" + std::to_string(pid));
    lines.push_back("listen_pid=" + clean(e_pid));
    lines.push_back("listen_fds=" + clean(e_fds));
    lines.push_back("listen_fdnames=" + clean(e_names));
    lines.push_back(std::string("env_listen_pid_matches=") + (pid_matches ? "1" : "0"));
    lines.push_back("n=" + std::to_string(n));
    lines.push_back("names=" + clean(join(names, ":").c_str()));
    lines.push_back(std::string("names_set=") + (e_names ? "1" : "0"));
    lines.insert(lines.end(), fd_lines.begin(), fd_lines.end());
    lines.push_back("extra_fds=" + join(extra, ","));
    lines.push_back("stdio=" + join(stdio, ","));
    std::string text = join(lines, "\n") + "\n";

    std::string tmp = std::string(argv[1]) + ".tmp." + std::to_string(pid);
    int out = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) return 3;
    bool wrote = write(out, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (close(out) != 0 || !wrote || rename(tmp.c_str(), argv[1]) != 0) {
        unlink(tmp.c_str());
        return 3;
    }

    if (!stay) return ok ? 0 : 1;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    int sig = 0;
    while (sigwait(&mask, &sig) != 0) {
    }
    return 0;
}
