// Why a worker's process died. The wait status says how (a code, a signal); the cause says why,
// from what cowherd itself sent to that process and from the kernel's OOM counters:
//
//   exited             it called exit (any code)
//   crashed            a signal of the kind a process raises on itself (SEGV, ABRT, BUS, ...)
//   oom_killed         SIGKILL, and the kernel logged this pid's OOM kill or counted one (worker
//                      cgroup, container, or, only "likely", the machine)
//   killed_by_cowherd  a signal cowherd sent, with its reason (stop, shutdown, watchdog, ...)
//   killed_externally  any other signal: someone else sent it, and the record says so
//
// Pure: the Supervisor gathers the facts and keeps the records.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "core/wait_status.hpp"
#include "daemon/supervise/worker_fsm.hpp"

namespace cow {

enum class ExitCause : std::uint8_t {
    exited,
    crashed,
    oom_killed,
    killed_by_cowherd,
    killed_externally
};
std::string_view to_string(ExitCause c);

// A signal cowherd sent to a generation's process, and why.
struct SentSignal {
    int signal = 0;
    std::string
        reason;  // "stop", "shutdown", "watchdog", "recycle: private 530 MiB > 512 MiB", ...
};

// What the OOM counters moved by since the process started (oom::Counters, differenced).
struct OomEvidence {
    std::string kernel;      // the kernel's own log line for this pid's kill: certain
    bool worker = false;     // its own cgroup counted a kill: certain
    bool container = false;  // the cgroup we run in counted one: certain it was in here
    bool machine = false;    // only /proc/vmstat moved: likely
};

struct ExitCauseFound {
    ExitCause cause = ExitCause::exited;
    std::string detail;  // "stop", "OOM kill counted in the worker's cgroup", ...
};

ExitCauseFound classify_exit(const ExitInfo& info, const std::vector<SentSignal>& sent,
                             const OomEvidence& oom);

// One exit of a slot's main process, kept in the slot's bounded history.
struct ExitRecord {
    pid_t pid = 0;
    std::uint64_t generation = 0;
    fsm::TimePoint started_at{};
    fsm::TimePoint ended_at{};
    ExitInfo info;
    ExitCauseFound cause;
    std::string orphan;  // a kept orphan's comm; "" for the slot's main process
};

// "killed by signal 9 (KILL): oom_killed (OOM kill counted in the container's cgroup)".
std::string describe(const ExitInfo& info, const ExitCauseFound& cause);

// The record's fields as `history` and `events` show them (times aside: each view has its own
// clock to show them in).
boost::json::object exit_fields(const ExitRecord& r);

}  // namespace cow
