// What a SIGKILLed daemon leaves behind: its workers run on, unsupervised. In cgroup mode its
// successor finds them in the worker cgroups. Without cgroups nothing on the system says which
// processes were its workers, so the daemon keeps a record of them in a file beside its socket
// and its successor reads it. Every recorded pid is verified by its start time before anything
// is signalled, so a pid reused since is never hit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sys/types.h>

#include "core/proc/proc_id.hpp"

namespace cow::leftovers {

using proc::ProcId;

struct Record {
    pid_t pid = 0;
    std::uint64_t starttime = 0;
    std::string name;  // "web.2", or "web.2 orphan"
    bool operator==(const Record&) const = default;
};

// "<socket>.workers": beside the socket's lock, in a directory only the daemon writes.
std::string state_path(const std::string& socket);

// Replaces the file atomically (a temporary file, fsync'd, renamed over it): a daemon killed
// mid-write leaves the previous record, never half of one. Returns false on failure.
bool write(const std::string& path, const std::vector<Record>& records);
// Unknown or malformed lines are skipped: the record only ever narrows what is signalled.
std::vector<Record> read(const std::string& path);
std::string encode(const std::vector<Record>& records);
std::vector<Record> decode(const std::string& text);

// SIGKILLs every recorded process that still runs (same pid and start time) together with its
// process group and its descendants. Returns every process it signalled.
std::vector<ProcId> kill(const std::vector<Record>& records);
// The start time of a running process (clock ticks since boot), 0 when it is gone.
std::uint64_t starttime_of(pid_t pid);
// True while any of them still runs (a zombie that is not ours counts as gone).
bool any_alive(const std::vector<ProcId>& procs);

}  // namespace cow::leftovers
