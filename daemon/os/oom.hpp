// The kernel's OOM-kill counters, read where this machine has them, best first: a worker's own
// cgroup (v2 memory.events), the container's cgroup (v2 memory.events at the root of our
// cgroup namespace, or v1 memory.oom_control), and the machine (/proc/vmstat). A counter that
// is absent (no memory controller, a read-only or hidden /sys/fs/cgroup) is nullopt, never 0.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <sys/types.h>

namespace cow::oom {

struct Counters {
    std::optional<std::uint64_t> worker;     // oom_kill in the worker's generation cgroup
    std::optional<std::uint64_t> container;  // oom_kill of the cgroup we run in
    std::optional<std::uint64_t> machine;    // oom_kill in /proc/vmstat
};

// "oom_kill N" from the text of memory.events (v2), memory.oom_control (v1) or /proc/vmstat
// ("oom_kill N" too); nullopt when the key is missing or malformed.
std::optional<std::uint64_t> parse_oom_kill(std::string_view text);

// The kernel's own record of an OOM kill, from /dev/kmsg: "Killed process PID (comm) ...".
// Opened at the end of the log, so that only kills from now on are seen; each look reads what
// came since (non-blocking) and keeps the last kills found. Where /dev/kmsg is not readable
// (most containers) it finds nothing.
class Kmsg {
  public:
    Kmsg();
    ~Kmsg();
    Kmsg(const Kmsg&) = delete;
    Kmsg& operator=(const Kmsg&) = delete;
    // The kernel's line for the kill of `pid`, if it logged one.
    std::optional<std::string> killed(pid_t pid);

  private:
    void read_new();
    int fd_ = -1;
    std::deque<std::pair<pid_t, std::string>> recent_;  // the last kills, oldest first
};

// "Killed process 27657 (memhog)" and what the line says the OOM was about, from one
// /dev/kmsg record ("3,618,27820357909,-;Memory cgroup out of memory: Killed process 27657
// (memhog) total-vm:..."); nullopt for any other record.
std::optional<std::pair<pid_t, std::string>> parse_kmsg_kill(std::string_view record);

// Reads the counters. Which files hold them is found once, at construction: a look costs one
// small read per counter that exists, and the machine's is not read where our cgroup has one.
class Reader {
  public:
    explicit Reader(const std::string& cgroup_root = "/sys/fs/cgroup",
                    const std::string& proc_root = "/proc");
    // `worker_cgroup` may be empty (no cgroup for this worker).
    Counters read(const std::string& worker_cgroup) const;

  private:
    std::string container_path_, machine_path_;
    mutable bool worker_events_ = true;
};

}  // namespace cow::oom
