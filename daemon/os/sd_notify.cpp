#include "daemon/os/sd_notify.hpp"

#include <cstdlib>
#include <cstring>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace cow {

SdNotify::SdNotify() {
    if (const char* w = std::getenv("WATCHDOG_USEC")) {
        const char* wp = std::getenv("WATCHDOG_PID");
        long long usec = std::atoll(w);
        if (usec > 0 && (!wp || std::atoll(wp) == getpid()))
            watchdog_ = std::chrono::microseconds(usec);
    }
    const char* addr = std::getenv("NOTIFY_SOCKET");
    if (addr && (addr[0] == '/' || addr[0] == '@') &&
        std::strlen(addr) < sizeof(sockaddr_un::sun_path)) {
        address_ = addr;
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    }
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
}

SdNotify::~SdNotify() {
    if (fd_ >= 0) ::close(fd_);
}

bool SdNotify::send(std::string_view message) {
    if (fd_ < 0) return false;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, address_.data(), address_.size());
    if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';  // the abstract namespace
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
    return ::sendto(fd_, message.data(), message.size(), MSG_NOSIGNAL,
                    reinterpret_cast<sockaddr*>(&sa), len) == static_cast<ssize_t>(message.size());
}

}  // namespace cow
