// /proc snapshots for the operator soak: which processes exist, who their parent is, and which
// pool and worker they came from (every worker's descendants inherit COWHERD_POOL and
// COWHERD_WORKER, and the soak tags its pools' environment with SOAK_RUN).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include "tests/support/wait_for.hpp"

namespace cow::soak {

struct Proc {
    pid_t pid = 0;
    pid_t ppid = 0;
    std::uint64_t start = 0;  // start time in clock ticks since boot: (pid, start) names it
    char state = '?';
    std::string cmdline;  // argv joined by spaces
    std::string run;      // SOAK_RUN, "" when absent
    std::string cfg;      // SOAK_CFG: which config of its pool started it
    std::string pool;     // COWHERD_POOL, "" when absent
    int worker = -1;      // COWHERD_WORKER, -1 when absent
    bool sentinel = false;
};

// Reads a whole small /proc file with one open; "" when it is gone.
inline std::string read_proc_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > (1u << 20)) break;
    }
    ::close(fd);
    return out;
}

// Fields of /proc/PID/stat after the command name; false when the process is gone.
inline bool read_stat(pid_t pid, Proc& p) {
    std::string s = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
    auto rp = s.rfind(')');
    if (rp == std::string::npos || rp + 2 >= s.size()) return false;
    p.pid = pid;
    p.state = s[rp + 2];
    // After ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
    // stime cutime cstime priority nice threads itrealvalue starttime (the 20th): skip 19.
    std::size_t pos = rp + 2;
    for (int field = 1; field < 20; ++field) {
        std::size_t end = s.find(' ', pos);
        if (end == std::string::npos) return false;
        if (field == 2) p.ppid = static_cast<pid_t>(std::stol(s.substr(pos, end - pos)));
        pos = end + 1;
    }
    std::size_t end = s.find(' ', pos);
    p.start = std::stoull(s.substr(pos, end == std::string::npos ? std::string::npos : end - pos));
    return true;
}

inline void read_env_tags(Proc& p) {
    std::string env = read_proc_file("/proc/" + std::to_string(p.pid) + "/environ");
    std::size_t pos = 0;
    while (pos < env.size()) {
        std::size_t end = env.find('\0', pos);
        if (end == std::string::npos) end = env.size();
        std::string_view kv(env.data() + pos, end - pos);
        if (kv.starts_with("SOAK_RUN="))
            p.run = std::string(kv.substr(9));
        else if (kv.starts_with("SOAK_CFG="))
            p.cfg = std::string(kv.substr(9));
        else if (kv.starts_with("COWHERD_POOL="))
            p.pool = std::string(kv.substr(13));
        else if (kv.starts_with("COWHERD_WORKER="))
            p.worker = std::atoi(std::string(kv.substr(15)).c_str());
        else if (kv == "SOAK_SENTINEL=1")
            p.sentinel = true;
        pos = end + 1;
    }
    std::string cmd = read_proc_file("/proc/" + std::to_string(p.pid) + "/cmdline");
    for (auto& c : cmd)
        if (c == '\0') c = ' ';
    while (!cmd.empty() && cmd.back() == ' ')
        cmd.pop_back();
    p.cmdline = std::move(cmd);
}

// Every process below `root` (not root itself), with its tags. Reads the stat of every process
// on the machine (cheap), and the environment only of root's descendants.
struct Snapshot {
    std::map<pid_t, Proc> procs;  // root's descendants only

    static Snapshot below(pid_t root) {
        std::map<pid_t, Proc> all;
        if (DIR* d = opendir("/proc")) {
            while (dirent* e = readdir(d)) {
                pid_t pid = std::atoi(e->d_name);
                if (pid <= 0) continue;
                Proc p;
                if (read_stat(pid, p)) all[pid] = p;
            }
            closedir(d);
        }
        std::map<pid_t, std::vector<pid_t>> kids;
        for (const auto& [pid, p] : all)
            kids[p.ppid].push_back(pid);
        Snapshot s;
        std::vector<pid_t> todo{root};
        while (!todo.empty()) {
            pid_t at = todo.back();
            todo.pop_back();
            for (pid_t k : kids[at]) {
                Proc p = all[k];
                read_env_tags(p);
                s.procs[k] = p;
                todo.push_back(k);
            }
        }
        return s;
    }

    std::vector<const Proc*> children_of(pid_t parent) const {
        std::vector<const Proc*> out;
        for (const auto& [pid, p] : procs)
            if (p.ppid == parent) out.push_back(&p);
        return out;
    }
    bool has(pid_t pid, std::uint64_t start) const {
        auto it = procs.find(pid);
        return it != procs.end() && it->second.start == start && it->second.state != 'Z';
    }
    // Is `pid` below `ancestor` (both in this snapshot, or ancestor the root)?
    bool below_of(pid_t pid, pid_t ancestor) const {
        for (int hops = 0; hops < 64; ++hops) {
            auto it = procs.find(pid);
            if (it == procs.end()) return false;
            if (it->second.ppid == ancestor) return true;
            pid = it->second.ppid;
        }
        return false;
    }
};

inline long count_fds(pid_t pid) {
    long n = 0;
    if (DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
        while (dirent* e = readdir(d))
            n += e->d_name[0] != '.';
        closedir(d);
    }
    return n;
}

// Sockets among a process's fds (the control listener, notify socket, pool listeners and any
// control connection not yet closed).
inline long count_socket_fds(pid_t pid) {
    long n = 0;
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] == '.') continue;
            char buf[128];
            ssize_t len = ::readlink((dir + "/" + e->d_name).c_str(), buf, sizeof buf - 1);
            n += len > 7 &&
                 std::string_view(buf, static_cast<std::size_t>(len)).starts_with("socket:");
        }
        closedir(d);
    }
    return n;
}

inline long rss_kib(pid_t pid) {
    std::string s = read_proc_file("/proc/" + std::to_string(pid) + "/status");
    auto pos = s.find("VmRSS:");
    return pos == std::string::npos ? -1 : std::atol(s.c_str() + pos + 6);
}

// Alive and not a zombie; a stopped process ('T') counts as alive here.
inline char proc_state(pid_t pid) {
    Proc p;
    return read_stat(pid, p) ? p.state : 0;
}

}  // namespace cow::soak
