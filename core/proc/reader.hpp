// Reads /proc files of one pid with a precise outcome. The root is injectable, so tests point it
// at a fake tree, and so are the syscalls, to inject errno values that root never gets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "core/proc/mem_counters.hpp"
#include "core/proc/proc_id.hpp"
#include "core/proc/smaps.hpp"
#include "core/proc/stat.hpp"
#include "core/proc/status.hpp"

namespace cow::proc {

enum class ReadStatus {
    ok,
    gone,        // ENOENT/ESRCH at open or read: exited (or reaped) meanwhile; skip it
    unreadable,  // EACCES/EPERM: report as unreadable, never as zero (design §4)
    error,       // anything else, or content that did not parse (err == EBADMSG)
};

std::string_view to_string(ReadStatus status);
ReadStatus status_from_errno(int err);

template <class T>
struct Read {
    ReadStatus status = ReadStatus::error;
    int err = 0;  // errno of the failed call; 0 when ok
    T value{};

    bool ok() const { return status == ReadStatus::ok; }
};

// The syscalls the reader makes. Tests swap them to inject what a fake root cannot produce:
// EACCES (root bypasses file modes) or ESRCH from a read() after a successful open().
struct ProcIo {
    std::function<int(const char* path, int flags)> open;
    std::function<ssize_t(int fd, void* buf, std::size_t count)> read;
    std::function<ssize_t(const char* path, char* buf, std::size_t size)> readlink;
};
ProcIo system_io();

class ProcReader {
  public:
    explicit ProcReader(std::string root = "/proc", ProcIo io = system_io());

    const std::string& root() const { return root_; }

    Read<Stat> read_stat(pid_t pid);
    Read<Status> read_status(pid_t pid);
    // One read() into 4 KiB (a rollup is under 1 KiB); a full buffer means "maybe more", so we
    // read again from scratch with a larger one rather than splice two generations together.
    // Fails with ESRCH (gone) at open for zombies and, note, for live kernel threads.
    Read<MemCounters> read_smaps_rollup(pid_t pid);
    // The whole file; empty for kernel threads and zombies. Costs ~1 µs per mapping plus a
    // page-table walk under the target's mmap lock: never in bulk on the event loop.
    Read<std::vector<Mapping>> read_smaps(pid_t pid);
    Read<std::vector<std::string>> read_cmdline(pid_t pid);
    Read<std::string> read_exe(pid_t pid);  // target of /proc/PID/exe
    // Any file of the pid, read whole: "stat", "task/12/children".
    Read<std::string> read_file(pid_t pid, std::string_view name);

    // Direct children, from /proc/PID/task/*/children: every thread, since a child's parent is
    // the thread that forked it. Without CONFIG_PROC_CHILDREN the files do not exist; we then
    // scan every /proc/*/stat for this ppid (and remember to skip straight to that next time).
    Read<std::vector<pid_t>> children(pid_t pid);
    // nullopt until children() has found out whether the kernel has the children files.
    std::optional<bool> has_children_files() const { return children_files_; }
    std::vector<pid_t> scan_children(pid_t pid);

    // Numeric entries of the root, sorted: processes (thread group leaders), not threads.
    std::vector<pid_t> all_pids();

    Read<ProcId> identify(pid_t pid);
    // False once the process is gone or the pid names another process.
    bool still_same(const ProcId& id);

  private:
    std::string path(pid_t pid, std::string_view name) const;
    Read<std::string> read_whole(const std::string& path, std::size_t initial);
    // For files the kernel renders whole on the first read (stat, status, smaps_rollup): one
    // read() is a consistent snapshot and skips the EOF read, which halves the syscalls of a
    // /proc-wide stat scan. A full buffer means "maybe more": reopen with twice the size.
    Read<std::string> read_single(const std::string& path, std::size_t initial);
    std::vector<std::string> list_dir(const std::string& path, int* err);

    std::string root_;
    ProcIo io_;
    std::optional<bool> children_files_;
};

}  // namespace cow::proc
