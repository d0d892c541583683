#include "daemon/os/notify.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace cow {

std::variant<std::unique_ptr<NotifyServer>, std::string> NotifyServer::open(
    boost::asio::io_context& io, Handler h) {
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return std::string("notify socket: ") + std::strerror(errno);
    unsigned char rnd[6] = {};
    if (::getrandom(rnd, sizeof rnd, GRND_NONBLOCK) < 0) {
        // Uniqueness, not secrecy: the pid alone already makes the name unique.
    }
    char name[64];
    std::snprintf(name, sizeof name, "cowherd-%d-%02x%02x%02x%02x%02x%02x", getpid(), rnd[0],
                  rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::size_t len = std::strlen(name);
    std::memcpy(addr.sun_path + 1, name, len);  // leading NUL: the abstract namespace
    socklen_t alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + len);
    int one = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&addr), alen) < 0) {
        std::string error = std::string("notify socket: ") + std::strerror(errno);
        ::close(fd);
        return error;
    }
    // A sender must not be able to wedge us with a full buffer: datagrams beyond it drop.
    int buf = 1 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    return std::unique_ptr<NotifyServer>(
        new NotifyServer(io, fd, std::string("@") + name, std::move(h)));
}

std::unique_ptr<NotifyServer> NotifyServer::adopt(boost::asio::io_context& io, int fd,
                                                  std::string address, Handler h) {
    return std::unique_ptr<NotifyServer>(
        new NotifyServer(io, fd, std::move(address), std::move(h)));
}

NotifyServer::NotifyServer(boost::asio::io_context& io, int fd, std::string address, Handler h)
    : sock_(io, fd), address_(std::move(address)), handler_(std::move(h)) {
    wait();
}

NotifyServer::~NotifyServer() {
    boost::system::error_code ec;
    sock_.cancel(ec);
}

void NotifyServer::wait() {
    sock_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     [this](const boost::system::error_code& ec) {
                         if (ec) return;
                         drain();
                         wait();
                     });
}

void NotifyServer::drain() {
    // Bounded per wakeup, so a chatty worker cannot starve the loop.
    for (int i = 0; i < 256; ++i) {
        char data[4096];
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 16)];
        iovec iov{data, sizeof data - 1};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(sock_.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) return;  // EAGAIN: drained
        pid_t sender = 0;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                ucred cred{};
                std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
                sender = cred.pid;
            } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                // fd store is not supported: never keep fds a worker pushed at us.
                int count = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                for (int k = 0; k < count; ++k) {
                    int fd;
                    std::memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
                    ::close(fd);
                }
            }
        }
        if (sender <= 0 || (msg.msg_flags & MSG_TRUNC)) continue;
        ++received_;
        handler_(sender, parse_notify(std::string_view(data, static_cast<std::size_t>(n))));
    }
}

}  // namespace cow
