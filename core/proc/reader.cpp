#include "core/proc/reader.hpp"

#include <algorithm>
#include <cerrno>

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include "core/proc/cmdline.hpp"
#include "core/proc/text.hpp"

namespace cow::proc {
namespace {

// Far beyond any real smaps_rollup; stops a pathological file from eating memory.
constexpr std::size_t kMaxSingleRead = 16u << 20;

class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }

  private:
    int fd_;
};

template <class T>
Read<T> failed(int err) {
    return {status_from_errno(err), err, T{}};
}

template <class T, class U>
Read<T> failed(const Read<U>& r) {
    return {r.status, r.err, T{}};
}

template <class T>
Read<T> success(T value) {
    return {ReadStatus::ok, 0, std::move(value)};
}

std::optional<pid_t> as_pid(std::string_view name) {
    auto pid = text::to_number<pid_t>(name);
    if (!pid || *pid <= 0) return std::nullopt;
    return pid;
}

}  // namespace

std::string_view to_string(ReadStatus status) {
    switch (status) {
        case ReadStatus::ok:
            return "ok";
        case ReadStatus::gone:
            return "gone";
        case ReadStatus::unreadable:
            return "unreadable";
        case ReadStatus::error:
            return "error";
    }
    return "error";
}

ReadStatus status_from_errno(int err) {
    switch (err) {
        case 0:
            return ReadStatus::ok;
        case ENOENT:
        case ESRCH:
            return ReadStatus::gone;
        case EACCES:
        case EPERM:
            return ReadStatus::unreadable;
        default:
            return ReadStatus::error;
    }
}

ProcIo system_io() {
    return {
        [](const char* path, int flags) { return ::open(path, flags); },
        [](int fd, void* buf, std::size_t count) { return ::read(fd, buf, count); },
        [](const char* path, char* buf, std::size_t size) { return ::readlink(path, buf, size); },
    };
}

ProcReader::ProcReader(std::string root, ProcIo io) : root_(std::move(root)), io_(std::move(io)) {}

std::string ProcReader::path(pid_t pid, std::string_view name) const {
    std::string p = root_;
    p += '/';
    p += std::to_string(pid);
    if (!name.empty()) {
        p += '/';
        p += name;
    }
    return p;
}

Read<std::string> ProcReader::read_whole(const std::string& file, std::size_t initial) {
    Fd fd(io_.open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return failed<std::string>(errno);
    std::string buf(std::max<std::size_t>(initial, 64), '\0');
    std::size_t used = 0;
    for (;;) {
        if (used == buf.size()) buf.resize(buf.size() * 2);
        ssize_t n = io_.read(fd.get(), buf.data() + used, buf.size() - used);
        if (n < 0 && errno == EINTR) continue;
        // ESRCH here is the process exiting between our open and read: still "gone".
        if (n < 0) return failed<std::string>(errno);
        if (n == 0) break;
        used += static_cast<std::size_t>(n);
    }
    buf.resize(used);
    return success(std::move(buf));
}

Read<std::string> ProcReader::read_single(const std::string& file, std::size_t initial) {
    for (std::size_t cap = initial; cap <= kMaxSingleRead; cap *= 2) {
        Fd fd(io_.open(file.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.get() < 0) return failed<std::string>(errno);
        std::string buf(cap, '\0');
        ssize_t n;
        do {
            n = io_.read(fd.get(), buf.data(), buf.size());
        } while (n < 0 && errno == EINTR);
        if (n < 0) return failed<std::string>(errno);
        if (static_cast<std::size_t>(n) < cap) {
            buf.resize(static_cast<std::size_t>(n));
            return success(std::move(buf));
        }
    }
    return failed<std::string>(EFBIG);
}

Read<std::string> ProcReader::read_file(pid_t pid, std::string_view name) {
    return read_whole(path(pid, name), 4096);
}

Read<Stat> ProcReader::read_stat(pid_t pid) {
    auto raw = read_single(path(pid, "stat"), 2048);
    if (!raw.ok()) return failed<Stat>(raw);
    auto st = parse_stat(raw.value);
    if (!st) return failed<Stat>(EBADMSG);
    return success(std::move(*st));
}

Read<Status> ProcReader::read_status(pid_t pid) {
    auto raw = read_single(path(pid, "status"), 4096);
    if (!raw.ok()) return failed<Status>(raw);
    return success(parse_status(raw.value));
}

Read<MemCounters> ProcReader::read_smaps_rollup(pid_t pid) {
    auto raw = read_single(path(pid, "smaps_rollup"), 4096);
    if (!raw.ok()) return failed<MemCounters>(raw);
    auto counters = parse_smaps_rollup(raw.value);
    if (!counters) return failed<MemCounters>(EBADMSG);
    return success(std::move(*counters));
}

Read<std::vector<Mapping>> ProcReader::read_smaps(pid_t pid) {
    auto raw = read_whole(path(pid, "smaps"), 64 * 1024);
    if (!raw.ok()) return failed<std::vector<Mapping>>(raw);
    return success(parse_smaps(raw.value));
}

Read<std::vector<std::string>> ProcReader::read_cmdline(pid_t pid) {
    auto raw = read_whole(path(pid, "cmdline"), 512);
    if (!raw.ok()) return failed<std::vector<std::string>>(raw);
    return success(split_cmdline(raw.value));
}

Read<std::string> ProcReader::read_exe(pid_t pid) {
    std::string link = path(pid, "exe");
    std::string buf(256, '\0');
    for (;;) {
        ssize_t n = io_.readlink(link.c_str(), buf.data(), buf.size());
        if (n < 0) return failed<std::string>(errno);
        if (static_cast<std::size_t>(n) < buf.size()) {
            buf.resize(static_cast<std::size_t>(n));
            return success(std::move(buf));
        }
        if (buf.size() >= kMaxSingleRead) return failed<std::string>(ENAMETOOLONG);
        buf.resize(buf.size() * 2);
    }
}

std::vector<std::string> ProcReader::list_dir(const std::string& dir, int* err) {
    std::vector<std::string> names;
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
        *err = errno;
        return names;
    }
    *err = 0;
    while (const dirent* e = ::readdir(d)) {
        std::string_view name = e->d_name;
        if (name != "." && name != "..") names.emplace_back(name);
    }
    ::closedir(d);
    return names;
}

std::vector<pid_t> ProcReader::all_pids() {
    int err = 0;
    std::vector<pid_t> pids;
    for (const auto& name : list_dir(root_, &err)) {
        if (auto pid = as_pid(name)) pids.push_back(*pid);
    }
    std::sort(pids.begin(), pids.end());
    return pids;
}

std::vector<pid_t> ProcReader::scan_children(pid_t pid) {
    std::vector<pid_t> kids;
    for (pid_t p : all_pids()) {
        auto st = read_stat(p);
        if (st.ok() && st.value.ppid == pid && p != pid) kids.push_back(p);
    }
    return kids;
}

Read<std::vector<pid_t>> ProcReader::children(pid_t pid) {
    int err = 0;
    auto tids = list_dir(path(pid, "task"), &err);
    if (err != 0) return failed<std::vector<pid_t>>(err);
    if (children_files_ == false) return success(scan_children(pid));

    std::vector<pid_t> kids;
    for (const auto& tid : tids) {
        if (!as_pid(tid)) continue;
        std::string task = "task/" + tid;
        auto raw = read_whole(path(pid, task + "/children"), 256);
        if (raw.ok()) {
            children_files_ = true;
            std::string_view rest = raw.value;
            for (auto tok = text::next_token(rest); !tok.empty(); tok = text::next_token(rest)) {
                if (auto kid = as_pid(text::trim(tok))) kids.push_back(*kid);
            }
        } else if (raw.status == ReadStatus::gone) {
            // Either this thread just exited, or the kernel lacks CONFIG_PROC_CHILDREN. The
            // thread's own stat tells which; only the first miss needs the extra read.
            if (!children_files_ && raw.err == ENOENT &&
                read_whole(path(pid, task + "/stat"), 512).ok()) {
                children_files_ = false;
                return success(scan_children(pid));
            }
        } else {
            return failed<std::vector<pid_t>>(raw);
        }
    }
    std::sort(kids.begin(), kids.end());
    kids.erase(std::unique(kids.begin(), kids.end()), kids.end());
    return success(std::move(kids));
}

Read<ProcId> ProcReader::identify(pid_t pid) {
    auto st = read_stat(pid);
    if (!st.ok()) return failed<ProcId>(st);
    return success(ProcId{st.value.pid, st.value.starttime});
}

bool ProcReader::still_same(const ProcId& id) {
    auto now = identify(id.pid);
    return now.ok() && now.value == id;
}

}  // namespace cow::proc
