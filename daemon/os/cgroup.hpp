// Per-worker cgroups (cgroup v2): stop and kill reach every descendant, however it forked or
// called setsid, and "stopped" means the cgroup is empty (populated 0).
//
// Layout: <our cgroup>/cowherd-<hash of the socket path>/<pool>.<index>-g<generation>. The
// socket lock guarantees one daemon per socket, so the directory is ours alone, and a daemon
// restarted after a crash finds its predecessor's leftovers there (see kill_leftovers).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace cow::cgroup {

// The mount point of the cgroup2 hierarchy, from /proc/self/mountinfo text.
std::optional<std::string> find_cgroup2_mount(std::string_view mountinfo);
// Our path inside the v2 hierarchy, from /proc/self/cgroup text ("0::/some/path").
std::optional<std::string> parse_v2_path(std::string_view proc_self_cgroup);
// "populated 1" in cgroup.events text.
std::optional<bool> parse_populated(std::string_view events);

struct Probe {
    bool usable = false;
    std::string mount;   // the hierarchy root
    std::string base;    // the directory we create worker cgroups in
    std::string reason;  // why usable or not, for the one startup log line
};

// Finds a writable cgroup2 hierarchy with cgroup.kill and creates our base directory in it.
Probe probe(std::string_view instance_key);

class Cgroups {
  public:
    Cgroups(std::string mount, std::string base)
        : mount_(std::move(mount)), base_(std::move(base)) {}
    const std::string& base() const { return base_; }
    // The directory of a cgroup given its path in the hierarchy (from /proc/PID/cgroup).
    std::string absolute(std::string_view rel) const;

    // Creates (or reuses) the directory for one worker generation; "" and errno on failure.
    std::string create(std::string_view name, int& err);
    // Removes an empty worker cgroup; a busy one stays (EBUSY) and is retried later.
    bool remove(const std::string& path);
    // nullopt when the cgroup is gone or unreadable.
    std::optional<bool> populated(const std::string& path) const;
    std::vector<pid_t> procs(const std::string& path) const;
    // SIGKILL to every member at once, with no pid race (cgroup.kill, Linux 5.14).
    bool kill(const std::string& path);
    // Any other signal: each member pinned by a pidfd, checked to still be in the cgroup, and
    // signalled through the pidfd, so a pid reused meanwhile is never hit. Returns how many.
    int signal(const std::string& path, int sig);
    // True for a worker cgroup of ours (a directory under base); kill and signal refuse others.
    bool ours(const std::string& path) const;
    // Existing worker cgroups under base (a crashed predecessor's); kills their members.
    std::vector<std::string> kill_leftovers();
    // At a clean exit: removes the (empty) worker cgroups and our base directory.
    void remove_all();

  private:
    std::string mount_;
    std::string base_;
};

// Members of the cgroup at `dir` (its cgroup.procs); empty when it is gone.
std::vector<pid_t> read_procs(const std::string& dir);

// True when `pid` is in the cgroup at `rel` (its path relative to the hierarchy root).
bool pid_in_cgroup(pid_t pid, std::string_view rel);

}  // namespace cow::cgroup
