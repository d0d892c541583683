#include "daemon/os/oom.hpp"

#include <cerrno>

#include <fcntl.h>
#include <unistd.h>

#include "daemon/os/small_file.hpp"

namespace cow::oom {

namespace {

std::optional<std::string> slurp(const std::string& path) {
    return read_small_file(path, 1 << 16);
}

std::optional<std::uint64_t> counter_in(const std::string& path) {
    auto text = slurp(path);
    if (!text) return std::nullopt;
    return parse_oom_kill(*text);
}

}  // namespace

std::optional<std::uint64_t> parse_oom_kill(std::string_view text) {
    constexpr std::string_view key = "oom_kill ";
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t end = text.find('\n', at);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(at, end - at);
        at = end + 1;
        if (!line.starts_with(key)) continue;
        std::string_view digits = line.substr(key.size());
        if (digits.empty() || digits.size() > 19) return std::nullopt;
        std::uint64_t v = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') return std::nullopt;
            v = v * 10 + static_cast<std::uint64_t>(c - '0');
        }
        return v;
    }
    return std::nullopt;
}

Reader::Reader(const std::string& cgroup_root, const std::string& proc_root) {
    // The cgroup we run in (in a container, the container's own, at the root of its cgroup
    // namespace): v1 keeps the count in the memory controller's oom_control, v2 in
    // memory.events (hierarchical, so a worker's kill counts there too).
    if (auto self = slurp(proc_root + "/self/cgroup")) {
        std::string_view text = *self;
        std::size_t at = 0;
        while (at < text.size() && container_path_.empty()) {
            std::size_t end = text.find('\n', at);
            if (end == std::string_view::npos) end = text.size();
            std::string_view line = text.substr(at, end - at);
            at = end + 1;
            std::size_t a = line.find(':'), b = line.find(':', a + 1);
            if (a == std::string_view::npos || b == std::string_view::npos) continue;
            std::string_view controllers = line.substr(a + 1, b - a - 1);
            std::string path(line.substr(b + 1));
            if (path == "/") path.clear();
            std::string candidate;
            if (controllers == "memory")
                candidate = cgroup_root + "/memory" + path + "/memory.oom_control";
            else if (controllers.empty())
                candidate = cgroup_root + path + "/memory.events";
            if (!candidate.empty() && counter_in(candidate)) container_path_ = candidate;
        }
    }
    // Only where our cgroup has no count: the machine's is a poor guess beside it.
    if (container_path_.empty() && counter_in(proc_root + "/vmstat"))
        machine_path_ = proc_root + "/vmstat";
}

Counters Reader::read(const std::string& worker_cgroup) const {
    Counters c;
    // A generation cgroup has memory.events only where the v2 memory controller is enabled;
    // once it is seen missing, no later worker looks again.
    if (!worker_cgroup.empty() && worker_events_) {
        c.worker = counter_in(worker_cgroup + "/memory.events");
        if (!c.worker && errno == ENOENT) worker_events_ = false;
    }
    if (!container_path_.empty()) c.container = counter_in(container_path_);
    if (!machine_path_.empty()) c.machine = counter_in(machine_path_);
    return c;
}

std::optional<std::pair<pid_t, std::string>> parse_kmsg_kill(std::string_view record) {
    const auto semi = record.find(';');
    if (semi == std::string_view::npos) return std::nullopt;
    std::string_view msg = record.substr(semi + 1);
    if (auto nl = msg.find('\n'); nl != std::string_view::npos) msg = msg.substr(0, nl);
    constexpr std::string_view key = "Killed process ";
    const auto at = msg.find(key);
    if (at == std::string_view::npos) return std::nullopt;
    std::string_view rest = msg.substr(at + key.size());
    pid_t pid = 0;
    std::size_t n = 0;
    while (n < rest.size() && n < 10 && rest[n] >= '0' && rest[n] <= '9')
        pid = pid * 10 + (rest[n++] - '0');
    if (n == 0 || n >= rest.size() || rest[n] != ' ') return std::nullopt;
    // "Memory cgroup out of memory: Killed process 1 (x) total-vm:..." -> up to the comm.
    auto close = rest.find(')', n);
    std::string_view shown =
        msg.substr(0, at + key.size() + (close == std::string_view::npos ? n : close + 1));
    return std::make_pair(pid, std::string(shown));
}

Kmsg::Kmsg() {
    fd_ = ::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ >= 0) ::lseek(fd_, 0, SEEK_END);
}

Kmsg::~Kmsg() {
    if (fd_ >= 0) ::close(fd_);
}

void Kmsg::read_new() {
    if (fd_ < 0) return;
    char buf[8192];  // one record per read(2), at most this long
    for (;;) {
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EPIPE)) continue;  // EPIPE: records overwritten
        if (n <= 0) return;                                         // EAGAIN: nothing more
        if (auto kill = parse_kmsg_kill(std::string_view(buf, static_cast<std::size_t>(n)))) {
            recent_.push_back(std::move(*kill));
            while (recent_.size() > 64)
                recent_.pop_front();
        }
    }
}

std::optional<std::string> Kmsg::killed(pid_t pid) {
    read_new();
    for (auto it = recent_.rbegin(); it != recent_.rend(); ++it)
        if (it->first == pid) return it->second;
    return std::nullopt;
}

}  // namespace cow::oom
