// Raw socket clients for the operator soak: a request to a pool's HTTP socket, and garbage for
// the control socket.
#pragma once

#include <cstring>
#include <random>
#include <string>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace cow::soak {

inline int connect_unix(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path) {
        ::close(fd);
        return -1;
    }
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

inline bool write_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return false;
        off += static_cast<std::size_t>(n);
    }
    return true;
}

// Reads until EOF or `ms` without data; returns what came.
inline std::string read_until_eof(int fd, int ms) {
    std::string out;
    char buf[4096];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, ms) <= 0) break;
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > (1u << 20)) break;
    }
    return out;
}

// One GET on a pool's unix socket (cow-http answers "pid N worker I"); "" on any failure.
inline std::string http_get(const std::string& sock_path, int timeout_ms = 5000) {
    int fd = connect_unix(sock_path);
    if (fd < 0) return "";
    std::string reply;
    if (write_all(fd, "GET / HTTP/1.0\r\n\r\n")) reply = read_until_eof(fd, timeout_ms);
    ::close(fd);
    return reply.find(" 200 ") != std::string::npos ? reply : "";
}

// What a hostile or broken client sends to the control socket. Returns a short description.
template <class Rng>
std::string send_garbage(const std::string& control, Rng& rng) {
    std::uniform_int_distribution<int> byte(0, 255);
    const int what = std::uniform_int_distribution<int>(0, 7)(rng);
    std::string payload, desc;
    switch (what) {
        case 0:
            for (int i = 0; i < 200; ++i)
                payload.push_back(static_cast<char>(byte(rng)));
            desc = "200 random bytes";
            break;
        case 1:
            for (int i = 0; i < 300; ++i)
                payload.push_back(static_cast<char>(byte(rng)));
            payload += "\n";
            desc = "a random line";
            break;
        case 2:
            payload = std::string(100 * 1024, 'x') + "\n";
            desc = "a 100 KiB line";
            break;
        case 3:
            payload = "{\"v\":1,\"id\":1,\"cmd\":\"nosuch\",\"args\":{}}\n{}\n[]\nnull\n";
            desc = "unknown verbs and empty JSON";
            break;
        case 4:
            payload =
                "{\"v\":1,\"id\":2,\"cmd\":\"stop\",\"args\":{\"target\":\"../../etc\"}}\n"
                "{\"v\":1,\"id\":3,\"cmd\":\"scale\",\"args\":{\"target\":\"p0\",\"size\":-5}}\n"
                "{\"v\":1,\"id\":4,\"cmd\":\"signal\",\"args\":{\"signal\":\"KILL9\","
                "\"target\":\"all\"}}\n"
                "{\"v\":99999999999999999999,\"id\":5,\"cmd\":\"status\"}\n";
            desc = "bad arguments";
            break;
        case 5:
            payload = "{\"v\":1,\"id\":1,\"cmd\":\"sta";
            desc = "half a request, then close";
            break;
        case 6:
            payload = std::string("{\"v\":1,\"id\":1,\"cmd\":\"status\"}\n") + '\0' + "\xff\xfe\n";
            desc = "a request, then NUL and invalid UTF-8";
            break;
        default:
            desc = "connect and close";
            break;
    }
    int fd = connect_unix(control);
    if (fd < 0) return desc + ": connect failed";
    write_all(fd, payload);
    // Read what the daemon answers, briefly; it must not matter whether we do.
    if (what % 2 == 0) read_until_eof(fd, 50);
    ::close(fd);
    return desc;
}

}  // namespace cow::soak
