// Reading a small kernel file (cgroup and /proc control files) whole, with plain syscalls: no
// stream, no allocation beyond the result. nullopt when it cannot be opened (errno says why).
#pragma once

#include <cerrno>
#include <cstddef>
#include <optional>
#include <string>

#include <fcntl.h>
#include <unistd.h>

namespace cow {

inline std::optional<std::string> read_small_file(const std::string& path, std::size_t limit) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > limit) break;
    }
    ::close(fd);
    return out;
}

}  // namespace cow
