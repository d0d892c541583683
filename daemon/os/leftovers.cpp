#include "daemon/os/leftovers.hpp"

#include <cerrno>
#include <sstream>

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/proc/reader.hpp"
#include "core/proc/tree.hpp"

namespace cow::leftovers {

namespace {

// Signals a process only if the pid still names the same process, through a pidfd, so that
// the check and the signal cannot be split by a reuse of the pid.
bool kill_verified(proc::ProcReader& reader, pid_t pid, std::uint64_t starttime) {
    if (pid <= 1 || pid == ::getpid()) return false;
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) return false;
    auto st = reader.read_stat(pid);
    bool hit = st.ok() && st.value.starttime == starttime && st.value.state != 'Z';
    if (hit) ::syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
    ::close(fd);
    return hit;
}

}  // namespace

std::string state_path(const std::string& socket) {
    return socket + ".workers";
}

std::string encode(const std::vector<Record>& records) {
    std::string out = "# cowherd workers v1: pid starttime name\n";
    for (const auto& r : records)
        out += std::to_string(r.pid) + " " + std::to_string(r.starttime) + " " + r.name + "\n";
    return out;
}

std::vector<Record> decode(const std::string& text) {
    std::vector<Record> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ls(line);
        Record r;
        long long pid = 0;
        unsigned long long start = 0;
        if (!(ls >> pid >> start) || pid <= 1 || pid > (1 << 22) || start == 0) continue;
        r.pid = static_cast<pid_t>(pid);
        r.starttime = start;
        std::getline(ls >> std::ws, r.name);
        out.push_back(std::move(r));
    }
    return out;
}

bool write(const std::string& path, const std::vector<Record>& records) {
    const std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return false;
    const std::string text = encode(records);
    std::size_t off = 0;
    while (off < text.size()) {
        ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
    }
    const bool ok = off == text.size();
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) < 0) {
        ::unlink(tmp.c_str());
        return false;
    }
    return true;
}

std::vector<Record> read(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return {};
    std::string text;
    char buf[65536];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
        text.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return decode(text);
}

std::vector<ProcId> kill(const std::vector<Record>& records) {
    proc::ProcReader reader;
    std::vector<ProcId> hit;
    for (const auto& r : records) {
        auto st = reader.read_stat(r.pid);
        if (!st.ok() || st.value.starttime != r.starttime) continue;
        // Its descendants first: once it is dead they reparent, and its subtree is lost.
        if (auto tree = proc::build_subtree(reader, r.pid); tree.ok()) {
            std::vector<const proc::ProcNode*> todo;
            for (const auto& c : tree.value.root.children)
                todo.push_back(&c);
            while (!todo.empty()) {
                const proc::ProcNode* n = todo.back();
                todo.pop_back();
                for (const auto& c : n->children)
                    todo.push_back(&c);
                if (kill_verified(reader, n->pid, n->starttime))
                    hit.push_back(ProcId{n->pid, n->starttime});
            }
        }
        if (kill_verified(reader, r.pid, r.starttime)) hit.push_back(ProcId{r.pid, r.starttime});
        // Its group, while it is a group leader: a pid is never reused while it names a group.
        if (st.value.pgrp == r.pid) ::kill(-r.pid, SIGKILL);
    }
    return hit;
}

std::uint64_t starttime_of(pid_t pid) {
    proc::ProcReader reader;
    auto st = reader.read_stat(pid);
    return st.ok() && st.value.state != 'Z' ? st.value.starttime : 0;
}

bool any_alive(const std::vector<ProcId>& procs) {
    proc::ProcReader reader;
    for (const auto& p : procs) {
        auto st = reader.read_stat(p.pid);
        if (st.ok() && st.value.starttime == p.starttime && st.value.state != 'Z') return true;
    }
    return false;
}

}  // namespace cow::leftovers
