#include "daemon/os/listen_sockets.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace cow {

ListenSocket::~ListenSocket() {
    if (fd_ >= 0) ::close(fd_);
    if (cfg_.kind == config::SocketConfig::Kind::unix_stream) ::unlink(cfg_.path.c_str());
}

bool ListenSocket::same_as(const config::SocketConfig& o) const {
    return cfg_.kind == o.kind && cfg_.host == o.host && cfg_.port == o.port &&
           cfg_.path == o.path && cfg_.mode == o.mode && cfg_.backlog == o.backlog &&
           cfg_.reuse_port == o.reuse_port;
}

std::variant<std::shared_ptr<ListenSocket>, std::string> ListenSocket::open(
    const config::SocketConfig& cfg) {
    const std::string who = "socket " + cfg.name + " (" + cfg.listen + ")";
    auto fail = [&](const char* what, int fd) {
        int err = errno;
        if (fd >= 0) ::close(fd);
        return who + ": " + what + ": " + std::strerror(err);
    };
    int one = 1;
    if (cfg.kind == config::SocketConfig::Kind::unix_stream) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return fail("socket", -1);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (cfg.path.size() >= sizeof addr.sun_path) {
            ::close(fd);
            return who + ": path too long";
        }
        std::memcpy(addr.sun_path, cfg.path.c_str(), cfg.path.size() + 1);
        // Missing parent directories are created, as systemd does for a socket unit's path
        // (a fresh /run/app/ after boot is the common case).
        const auto parent = std::filesystem::path(cfg.path).parent_path();
        if (std::error_code ec; !parent.empty() && !std::filesystem::is_directory(parent, ec)) {
            std::filesystem::create_directories(parent, ec);
            if (ec) {
                ::close(fd);
                return who + ": cannot create " + parent.string() + ": " + ec.message();
            }
        }
        // A leftover socket file from an earlier run would make bind fail; a regular file
        // or anything else at that path is not ours to remove.
        struct stat st {};
        if (::lstat(cfg.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(cfg.path.c_str());
        mode_t old = ::umask(cfg.mode ? static_cast<mode_t>(~*cfg.mode & 0777) : 0);
        int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        ::umask(old);
        if (rc < 0) return fail("bind", fd);
        if (::listen(fd, cfg.backlog) < 0) return fail("listen", fd);
        return std::shared_ptr<ListenSocket>(new ListenSocket(cfg, fd));
    }

    sockaddr_storage ss{};
    socklen_t len = 0;
    int family = AF_INET;
    if (cfg.host.find(':') != std::string::npos) {
        auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
        a6->sin6_family = family = AF_INET6;
        a6->sin6_port = htons(static_cast<std::uint16_t>(cfg.port));
        if (::inet_pton(AF_INET6, cfg.host.c_str(), &a6->sin6_addr) != 1)
            return who + ": not a numeric IPv6 address: " + cfg.host;
        len = sizeof *a6;
    } else {
        auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
        a4->sin_family = AF_INET;
        a4->sin_port = htons(static_cast<std::uint16_t>(cfg.port));
        if (cfg.host.empty()) {
            a4->sin_addr.s_addr = htonl(INADDR_ANY);
        } else if (::inet_pton(AF_INET, cfg.host.c_str(), &a4->sin_addr) != 1) {
            return who + ": not a numeric IPv4 address: " + cfg.host;
        }
        len = sizeof *a4;
    }
    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail("socket", -1);
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (cfg.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        return fail("SO_REUSEPORT", fd);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0) return fail("bind", fd);
    if (::listen(fd, cfg.backlog) < 0) return fail("listen", fd);
    return std::shared_ptr<ListenSocket>(new ListenSocket(cfg, fd));
}

std::variant<ListenSockets, std::string> open_pool_sockets(const config::PoolConfig& pool,
                                                           const ListenSockets& keep) {
    ListenSockets out;
    for (const auto& sc : pool.sockets) {
        std::shared_ptr<ListenSocket> found;
        for (const auto& k : keep)
            if (k->same_as(sc)) found = k;
        if (found) {
            out.push_back(found);
            continue;
        }
        auto r = ListenSocket::open(sc);
        if (auto* err = std::get_if<std::string>(&r)) {
            std::string msg = "pools." + pool.name + ": " + *err;
            // The running listener on that port stays bound as long as a worker holds it, so
            // an address cannot be widened or narrowed in place; say what to do instead.
            for (const auto& k : keep) {
                const auto& kc = k->config();
                if (kc.kind == config::SocketConfig::Kind::unix_stream || kc.port != sc.port ||
                    err->find("Address already in use") == std::string::npos)
                    continue;
                msg += " (the running listener " + kc.listen + " holds port " +
                       std::to_string(kc.port) +
                       " while any worker runs, so it cannot change address in place: use "
                       "another port, or remove the socket's pool, reload, then add it back "
                       "with the new address and reload again)";
                break;
            }
            return msg;
        }
        out.push_back(std::get<std::shared_ptr<ListenSocket>>(r));
    }
    return out;
}

}  // namespace cow
