#include "daemon/os/handover.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

extern char** environ;

namespace cow::handover {

namespace {
std::string sentence(const std::string& what, int err) {
    return what + ": " + std::strerror(err);
}
}  // namespace

std::variant<int, std::string> to_memfd(const std::string& name, const std::string& text) {
    int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC);
    if (fd < 0) return sentence("memfd_create", errno);
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int err = errno;
            ::close(fd);
            return sentence("write state", err);
        }
        done += static_cast<std::size_t>(n);
    }
    return fd;
}

std::variant<std::string, std::string> read_all(int fd, std::size_t max) {
    std::string out;
    char buf[65536];
    for (off_t off = 0;;) {
        ssize_t n = ::pread(fd, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return std::variant<std::string, std::string>(std::in_place_index<1>,
                                                          sentence("read state", errno));
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        off += n;
        if (out.size() > max)
            return std::variant<std::string, std::string>(std::in_place_index<1>,
                                                          "state larger than its bound");
    }
    return std::variant<std::string, std::string>(std::in_place_index<0>, std::move(out));
}

bool inherit(const std::vector<int>& fds, bool keep) {
    bool ok = true;
    for (int fd : fds) {
        int flags = ::fcntl(fd, F_GETFD);
        if (flags < 0) {
            ok = false;
            continue;
        }
        flags = keep ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC;
        if (::fcntl(fd, F_SETFD, flags) < 0) ok = false;
    }
    return ok;
}

void seal_others(const std::vector<int>& keep) {
    unsigned from = 3;
    for (int fd : keep) {
        if (fd < 0 || static_cast<unsigned>(fd) < from) continue;
        if (static_cast<unsigned>(fd) > from)
            ::close_range(from, static_cast<unsigned>(fd) - 1, CLOSE_RANGE_CLOEXEC);
        from = static_cast<unsigned>(fd) + 1;
    }
    ::close_range(from, ~0U, CLOSE_RANGE_CLOEXEC);
}

int open_self_exe() {
    return ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
}

std::string self_exe_path() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return {};
    std::string path(buf, static_cast<std::size_t>(n));
    constexpr std::string_view kDeleted = " (deleted)";
    if (path.size() > kDeleted.size() && path.ends_with(kDeleted))
        path.resize(path.size() - kDeleted.size());
    return path;
}

std::string exec(const std::string& path, int exe_fd, const std::vector<std::string>& argv) {
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (path.empty()) {
        ::execveat(exe_fd, "", args.data(), environ, AT_EMPTY_PATH);
        return sentence("execute the previous binary", errno);
    }
    ::execve(path.c_str(), args.data(), environ);
    return sentence("execute " + path, errno);
}

std::string check_executable(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) return sentence(path, errno);
    if (!S_ISREG(st.st_mode)) return path + " is not a regular file";
    if (::access(path.c_str(), X_OK) < 0) return sentence(path, errno);
    return {};
}

}  // namespace cow::handover
