#include "daemon/os/cgroup.hpp"

#include <cerrno>
#include <cstring>
#include <functional>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/os/small_file.hpp"

namespace cow::cgroup {
namespace {

std::string read_small(const std::string& path) {
    return read_small_file(path, 1u << 22).value_or("");
}

bool write_small(const std::string& path, std::string_view text) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = ::write(fd, text.data(), text.size());
    ::close(fd);
    return n == static_cast<ssize_t>(text.size());
}

// mountinfo escapes spaces and friends as \040 etc.
std::string unescape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            int v = 0;
            bool ok = true;
            for (int k = 1; k <= 3; ++k) {
                char c = s[i + static_cast<std::size_t>(k)];
                if (c < '0' || c > '7') ok = false;
                v = v * 8 + (c - '0');
            }
            if (ok) {
                out.push_back(static_cast<char>(v));
                i += 3;
                continue;
            }
        }
        out.push_back(s[i]);
    }
    return out;
}

int pidfd_open(pid_t pid) {
    return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}
int pidfd_send_signal(int fd, int sig) {
    return static_cast<int>(syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0));
}

std::string fnv_hex(std::string_view s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return std::string(buf, 10);
}

}  // namespace

std::optional<std::string> find_cgroup2_mount(std::string_view mountinfo) {
    // Fields: id parent maj:min root mountpoint options [optional...] - fstype source superopts
    std::size_t pos = 0;
    while (pos < mountinfo.size()) {
        std::size_t end = mountinfo.find('\n', pos);
        if (end == std::string_view::npos) end = mountinfo.size();
        std::string_view line = mountinfo.substr(pos, end - pos);
        pos = end + 1;
        std::size_t sep = line.find(" - ");
        if (sep == std::string_view::npos) continue;
        std::string_view tail = line.substr(sep + 3);
        if (!tail.starts_with("cgroup2 ")) continue;
        std::vector<std::string_view> f;
        std::size_t p = 0;
        while (p < sep && f.size() < 6) {
            std::size_t q = line.find(' ', p);
            if (q == std::string_view::npos || q > sep) q = sep;
            f.push_back(line.substr(p, q - p));
            p = q + 1;
        }
        if (f.size() < 5) continue;
        if (f[3] != "/") continue;  // a bind mount of a subtree is not the hierarchy root
        return unescape(f[4]);
    }
    return std::nullopt;
}

std::optional<std::string> parse_v2_path(std::string_view text) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        if (line.starts_with("0::")) return std::string(line.substr(3));
    }
    return std::nullopt;
}

std::optional<bool> parse_populated(std::string_view events) {
    auto p = events.find("populated ");
    if (p == std::string_view::npos || p + 10 >= events.size()) return std::nullopt;
    char c = events[p + 10];
    if (c != '0' && c != '1') return std::nullopt;
    return c == '1';
}

Probe probe(std::string_view instance_key) {
    Probe r;
    auto mount = find_cgroup2_mount(read_small("/proc/self/mountinfo"));
    if (!mount) {
        r.reason = "no cgroup2 hierarchy is mounted";
        return r;
    }
    auto self = parse_v2_path(read_small("/proc/self/cgroup"));
    if (!self) {
        r.reason = "this process has no cgroup v2 path in /proc/self/cgroup";
        return r;
    }
    std::string mine = *mount + (*self == "/" ? "" : *self);
    if (::access((mine + "/cgroup.procs").c_str(), F_OK) != 0) {
        r.reason = "our cgroup " + mine + " is not visible (cgroup namespace?)";
        return r;
    }
    std::string base = mine + "/cowherd-" + fnv_hex(instance_key);
    if (::mkdir(base.c_str(), 0755) < 0 && errno != EEXIST) {
        r.reason = "cannot create " + base + ": " + std::strerror(errno);
        return r;
    }
    if (::access((base + "/cgroup.kill").c_str(), W_OK) != 0) {
        r.reason = base + "/cgroup.kill is missing or not writable (needs Linux 5.14)";
        ::rmdir(base.c_str());
        return r;
    }
    r.mount = *mount;
    r.usable = true;
    r.base = base;
    r.reason = "cgroup v2 at " + *mount + ", worker cgroups under " + base;
    return r;
}

std::string Cgroups::create(std::string_view name, int& err) {
    std::string path = base_ + "/" + std::string(name);
    if (::mkdir(path.c_str(), 0755) < 0 && errno != EEXIST) {
        err = errno;
        return {};
    }
    err = 0;
    return path;
}

std::string Cgroups::absolute(std::string_view rel) const {
    return mount_ + std::string(rel);
}

bool Cgroups::remove(const std::string& path) {
    return ::rmdir(path.c_str()) == 0 || errno == ENOENT;
}

std::optional<bool> Cgroups::populated(const std::string& path) const {
    std::string text = read_small(path + "/cgroup.events");
    if (text.empty()) return std::nullopt;
    return parse_populated(text);
}

std::vector<pid_t> Cgroups::procs(const std::string& path) const {
    return read_procs(path);
}

std::vector<pid_t> read_procs(const std::string& path) {
    std::vector<pid_t> out;
    // One read() answers for the usual handful of members; a full buffer means read on.
    std::string text;
    int fd = ::open((path + "/cgroup.procs").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return out;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) text.assign(buf, static_cast<std::size_t>(n));
    if (n == static_cast<ssize_t>(sizeof buf)) {
        ::close(fd);
        text = read_small(path + "/cgroup.procs");
    } else {
        ::close(fd);
    }
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        pid_t pid = std::atoi(text.c_str() + pos);
        if (pid > 0) out.push_back(pid);
        pos = end + 1;
    }
    return out;
}

// Only a worker cgroup, under our base, is ever signalled: never cowherd's own cgroup (a
// process of a kill_mode: group pool lives there, beside the daemon) or anything above it.
bool Cgroups::ours(const std::string& path) const {
    return path.size() > base_.size() + 1 && path.compare(0, base_.size(), base_) == 0 &&
           path[base_.size()] == '/' && path.find("/..") == std::string::npos;
}

bool Cgroups::kill(const std::string& path) {
    if (!ours(path)) return false;
    return write_small(path + "/cgroup.kill", "1");
}

int Cgroups::signal(const std::string& path, int sig) {
    if (!ours(path)) return 0;
    std::string rel = path.substr(mount_.size());
    int n = 0;
    for (pid_t pid : procs(path)) {
        int fd = pidfd_open(pid);
        if (fd < 0) continue;  // already gone
        // The pidfd pins the process; if it is still in this cgroup it is the one we listed.
        if (pid_in_cgroup(pid, rel) && pidfd_send_signal(fd, sig) == 0) ++n;
        ::close(fd);
    }
    return n;
}

std::vector<std::string> Cgroups::kill_leftovers() {
    std::vector<std::string> found;
    DIR* d = ::opendir(base_.c_str());
    if (!d) return found;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.' || e->d_type != DT_DIR) continue;
        std::string path = base_ + "/" + e->d_name;
        if (populated(path).value_or(false)) {
            kill(path);
            found.push_back(path);
        } else {
            ::rmdir(path.c_str());
        }
    }
    ::closedir(d);
    return found;
}

void Cgroups::remove_all() {
    if (DIR* d = ::opendir(base_.c_str())) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.' && e->d_type == DT_DIR)
                ::rmdir((base_ + "/" + e->d_name).c_str());
        ::closedir(d);
    }
    ::rmdir(base_.c_str());
}

bool pid_in_cgroup(pid_t pid, std::string_view rel) {
    auto path = parse_v2_path(read_small("/proc/" + std::to_string(pid) + "/cgroup"));
    return path && *path == rel;
}

}  // namespace cow::cgroup
