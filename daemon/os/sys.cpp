#include "daemon/os/sys.hpp"

#include <cerrno>
#include <charconv>

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/proc/reader.hpp"
#include "core/proc/tree.hpp"

namespace cow {

void RealSys::kill_group(pid_t leader, int sig) {
    if (leader <= 1) return;  // never -1 or 0: that would be everyone, or ourselves
    if (::kill(-leader, sig) < 0 && errno == ESRCH) ::kill(leader, sig);
}

void RealSys::kill_child(pid_t pid, int sig) {
    if (pid <= 1) return;
    ::kill(pid, sig);
}

std::vector<ProcId> RealSys::kill_descendants(pid_t leader, int sig) {
    proc::ProcReader reader;
    auto tree = proc::build_subtree(reader, leader);
    std::vector<ProcId> found;
    if (!tree.ok()) return found;
    // Breadth-first over the snapshot; each pid is pinned with a pidfd and re-identified by its
    // start time before the signal, so a pid that died and was reused is never hit.
    std::vector<const proc::ProcNode*> todo;
    for (const auto& c : tree.value.root.children)
        todo.push_back(&c);
    while (!todo.empty()) {
        const proc::ProcNode* node = todo.back();
        todo.pop_back();
        for (const auto& c : node->children)
            todo.push_back(&c);
        int fd = static_cast<int>(syscall(SYS_pidfd_open, node->pid, 0));
        if (fd < 0) continue;
        auto st = reader.read_stat(node->pid);
        if (st.ok() && st.value.starttime == node->starttime) {
            found.push_back(ProcId{node->pid, node->starttime});
            if (st.value.pgrp != leader) syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0);
        }
        ::close(fd);
    }
    return found;
}

std::vector<spawn::Result> RealSys::spawn_all(const std::vector<spawn::Plan*>& plans) {
    if (plans.size() < 2) return Sys::spawn_all(plans);
    if (!crew_) crew_ = std::make_unique<SpawnCrew>();
    return crew_->run(plans);
}

std::vector<pid_t> RealSys::children() {
    proc::ProcReader reader;
    auto r = reader.children(getpid());
    return r.ok() ? r.value : std::vector<pid_t>{};
}

std::optional<ProcInfo> RealSys::proc_info(pid_t pid) {
    proc::ProcReader reader;
    auto st = reader.read_stat(pid);
    if (!st.ok()) return std::nullopt;
    ProcInfo info;
    info.pid = pid;
    info.ppid = st.value.ppid;
    info.sid = st.value.session;
    info.pgid = st.value.pgrp;
    info.starttime = st.value.starttime;
    info.state = st.value.state;
    info.comm = st.value.comm;
    if (cgroups_) {
        auto cg = reader.read_file(pid, "cgroup");
        if (cg.ok())
            if (auto rel = cgroup::parse_v2_path(cg.value)) info.cgroup = cgroups_->absolute(*rel);
    }
    return info;
}

void RealSys::signal_proc(const ProcId& id, int sig) {
    if (id.pid <= 1) return;
    int fd = static_cast<int>(syscall(SYS_pidfd_open, id.pid, 0));
    if (fd < 0) return;
    proc::ProcReader reader;
    auto st = reader.read_stat(id.pid);
    if (st.ok() && st.value.starttime == id.starttime)
        syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0);
    ::close(fd);
}

std::optional<std::pair<std::string, int>> RealSys::worker_env(pid_t pid) {
    proc::ProcReader reader;
    auto env = reader.read_file(pid, "environ");
    if (!env.ok()) return std::nullopt;
    std::string_view all = env.value;
    std::optional<std::string> pool;
    std::optional<int> index;
    while (!all.empty()) {
        auto end = all.find('\0');
        std::string_view kv = all.substr(0, end);
        if (kv.starts_with("COWHERD_POOL=")) pool = std::string(kv.substr(13));
        if (kv.starts_with("COWHERD_WORKER=")) {
            int v = 0;
            auto digits = kv.substr(15);
            auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
            if (ec == std::errc() && p == digits.data() + digits.size()) index = v;
        }
        if (end == std::string_view::npos) break;
        all.remove_prefix(end + 1);
    }
    if (!pool || !index) return std::nullopt;
    return std::make_pair(*pool, *index);
}

void RealSys::kill_all_but_self() {
    // kill(-1) skips the caller itself (and, in a pid namespace, reaches only that namespace).
    if (getpid() == 1) ::kill(-1, SIGKILL);
}

}  // namespace cow
