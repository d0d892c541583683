#include "daemon/logs/log_writer.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <boost/asio/post.hpp>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/spawn/spawn.hpp"

namespace cow {
namespace {

// A failing file is tried again after kRetryFirst, then twice as long each time up to
// kRetryMax: a freed disk is noticed within a second, and a dead one costs a write a second.
constexpr std::chrono::steady_clock::duration kRetryFirst = std::chrono::milliseconds(50);
constexpr std::chrono::steady_clock::duration kRetryMax = std::chrono::seconds(1);
// A file that fails again this soon after it recovered goes on from the longer wait, so a
// disk hovering at full does not make it flap (and log) every 50 ms.
constexpr auto kSettled = std::chrono::seconds(10);

bool has_file_sink(const config::PoolConfig& pc) {
    return pc.stdout_sink.kind == config::OutputSink::Kind::file ||
           pc.stderr_sink.kind == config::OutputSink::Kind::file;
}

}  // namespace

std::string prepare_log_dir(const config::Config& cfg) {
    const config::PoolConfig* user = nullptr;
    for (const auto& pc : cfg.pools)
        if (!user && has_file_sink(pc)) user = &pc;
    if (!user) return {};
    const std::string& dir = cfg.daemon.log_dir;
    if (dir.empty())
        return "pool \"" + user->name + "\" writes to a file, but daemon.log_dir is not set";
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
        return "daemon.log_dir " + dir + " is not a directory";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return "daemon.log_dir " + dir + " cannot be created: " + ec.message();
    // As the daemon's effective ids will open the files (root passes unless read-only).
    if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0)
        return "daemon.log_dir " + dir + " is not writable: " + std::strerror(errno);
    return {};
}

namespace {

std::uint64_t count_lines(const std::string& data, const char* buf, std::size_t len) {
    // Every line queued ends in '\n' (pieces of a long line included), so this is the
    // number of lines, as the pool's line counter counted them.
    return static_cast<std::uint64_t>(std::count(data.begin(), data.end(), '\n') +
                                      std::count(buf, buf + len, '\n'));
}

}  // namespace

LogWriter::LogWriter(boost::asio::io_context& io, std::size_t capacity, WriteFn writev)
    : io_(io), capacity_(capacity), writev_(std::move(writev)) {
    if (!writev_) writev_ = [](int fd, const iovec* iov, int n) { return ::writev(fd, iov, n); };
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);  // signals stay with the loop thread
    thread_ = std::thread([this] { loop(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

LogWriter::~LogWriter() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    for (auto& f : files_)
        if (f->fd >= 0) ::close(f->fd);
}

int LogWriter::file_target(const std::string& path, std::uint64_t max_size, int keep) {
    std::lock_guard lock(mu_);
    if (auto it = by_path_.find(path); it != by_path_.end()) return it->second;
    files_.push_back(std::make_unique<File>(File{path, max_size, keep}));
    int id = static_cast<int>(files_.size());
    by_path_[path] = id;
    return id;
}

void LogWriter::release(int target) {
    if (target == kStdout) return;
    {
        std::lock_guard lock(mu_);
        Item item;
        item.target = target;
        item.release = true;
        queue_.push_back(std::move(item));
    }
    cv_.notify_one();
}

LogWriter::File& LogWriter::file_of(int target) {
    if (target == kStdout) return stdout_;
    return *files_[static_cast<std::size_t>(target - 1)];  // under mu_: file_target may grow it
}

LogWriter::File& LogWriter::writer_file(int target) {
    if (target == kStdout) return stdout_;
    return *seen_[static_cast<std::size_t>(target - 1)];  // the writer thread's own copy
}

bool LogWriter::over_capacity() const {
    std::lock_guard lock(mu_);
    return queued_bytes_ >= capacity_;
}

bool LogWriter::room_for(int target) const {
    std::lock_guard lock(mu_);
    if (queued_bytes_ >= capacity_) return false;
    if (target == kStdout) return true;
    return !files_[static_cast<std::size_t>(target - 1)]->shared_holding;
}

bool LogWriter::write(Dest d, std::string bytes) {
    if (bytes.empty()) return true;
    {
        std::lock_guard lock(mu_);
        if (!d.keep) {
            // Failing and not due for a retry: the lines would only be lost in the queue.
            const File& f = file_of(d.target);
            if (f.shared_failing && Clock::now() < f.shared_retry_at) return false;
        }
        if (queued_bytes_ >= capacity_) {
            full_signalled_ = true;
            return false;
        }
        queued_bytes_ += bytes.size();
        // Coalesce with the previous batch for the same target: fewer, larger writes.
        // (Not onto a buffer item: its buffer's bytes go after its data.)
        Item* last = queue_.empty() ? nullptr : &queue_.back();
        if (last && last->target == d.target && last->account == d.account &&
            last->keep == d.keep && !last->buf && !last->release && last->data.size() < 65536)
            last->data.append(bytes);
        else
            queue_.push_back(Item{d.target, std::move(bytes), {}, 0, 0, d.account, d.keep});
    }
    cv_.notify_one();
    return true;
}

void LogWriter::write_anyway(Dest d, std::string bytes) {
    if (bytes.empty()) return;
    {
        std::lock_guard lock(mu_);
        queued_bytes_ += bytes.size();
        if (queued_bytes_ >= capacity_) full_signalled_ = true;
        queue_.push_back(Item{d.target, std::move(bytes), {}, 0, 0, d.account, d.keep});
    }
    cv_.notify_one();
}

LogWriter::Buffer LogWriter::take_buffer() {
    {
        std::lock_guard lock(mu_);
        if (!spare_.empty()) {
            Buffer b = std::move(spare_.back());
            spare_.pop_back();
            return b;
        }
    }
    // Not zeroed: read(2) fills what is used.
    return Buffer{std::unique_ptr<char[]>(new char[kBufferSize]), kBufferSize};
}

bool LogWriter::write(Dest d, std::string head, Buffer& buf, std::size_t off, std::size_t len,
                      bool anyway) {
    {
        std::lock_guard lock(mu_);
        if (!anyway && !d.keep) {
            const File& f = file_of(d.target);
            if (f.shared_failing && Clock::now() < f.shared_retry_at) return false;
        }
        if (queued_bytes_ >= capacity_ && !anyway) {
            full_signalled_ = true;
            return false;
        }
        Item item{d.target, std::move(head), std::move(buf), off, len, d.account, d.keep};
        queued_bytes_ += item.cost();
        if (queued_bytes_ >= capacity_) full_signalled_ = true;
        queue_.push_back(std::move(item));
    }
    cv_.notify_one();
    return true;
}

void LogWriter::reopen(std::function<void(std::vector<std::string>)> done) {
    {
        std::lock_guard lock(mu_);
        reopen_ = true;
        reopen_done_.push_back(std::move(done));
    }
    cv_.notify_one();
}

void LogWriter::flush() {
    std::unique_lock lock(mu_);
    idle_cv_.wait(lock, [this] { return (queue_.empty() && !busy_) || stop_; });
}

std::uint64_t LogWriter::rotations() const {
    std::lock_guard lock(mu_);
    return rotations_;
}

std::uint64_t LogWriter::write_errors() const {
    std::lock_guard lock(mu_);
    return errors_;
}

void LogWriter::loop() {
    pthread_setname_np(pthread_self(), "cowherd-logs");
    auto last_check = Clock::now();
    for (;;) {
        Item item;
        std::size_t cost = 0;
        bool have = false, reopen = false, stopping = false;
        std::vector<std::function<void(std::vector<std::string>)>> reopen_done;
        {
            std::unique_lock lock(mu_);
            // The steady clock: a retry is due after a duration, whatever the wall clock does.
            auto wake = Clock::now() + std::chrono::seconds(1);
            for (const File* f : holding_)
                wake = std::min(wake, f->retry_at);
            auto ready = [this] { return stop_ || reopen_ || !queue_.empty(); };
            // The once-a-second look for moved files is only for open files: a daemon with
            // none (console sinks) sleeps until there is work, with no idle wakeups.
            bool any_open = !holding_.empty();
            for (const File* f : seen_)
                any_open = any_open || f->fd >= 0;
            if (any_open)
                cv_.wait_until(lock, wake, ready);
            else
                cv_.wait(lock, ready);
            if (queue_.empty()) {
                busy_ = false;
                idle_cv_.notify_all();
            }
            stopping = stop_ && queue_.empty();
            reopen = reopen_;
            reopen_ = false;
            reopen_done.swap(reopen_done_);
            for (std::size_t i = seen_.size(); i < files_.size(); ++i)
                seen_.push_back(files_[i].get());
            if (!stopping && !queue_.empty()) {
                item = std::move(queue_.front());
                queue_.pop_front();
                cost = item.cost();
                have = busy_ = true;
            }
        }
        if (reopen) do_reopen(std::move(reopen_done));
        // A file deleted or moved away by someone else is noticed within a second.
        auto now = Clock::now();
        if (now - last_check >= std::chrono::seconds(1)) {
            last_check = now;
            for (File* f : seen_)
                check_moved(*f);
        }
        for (File* f : std::vector<File*>(holding_))
            if (stopping || f->retry_at <= now) retry_held(*f);
        if (stopping) {
            // The loop is gone: say here what is lost rather than hang the exit on a disk.
            for (File* f : holding_) {
                std::uint64_t n = 0;
                for (const Item& i : f->held)
                    n += count_lines(i.data, i.buf ? i.buf.data.get() + i.off : nullptr, i.len);
                spdlog::error("{} lines for {} could not be written before exit: {}", n, f->path,
                              std::strerror(f->err));
            }
            return;
        }
        if (!have) continue;
        handle(writer_file(item.target), item);
        {
            std::lock_guard lock(mu_);
            queued_bytes_ -= cost;
            // A few spares cover a flood; more would only hold memory a burst once needed.
            // (A held item took its buffer along.)
            if (item.buf && spare_.size() < 4) spare_.push_back(std::move(item.buf));
            if (full_signalled_ && queued_bytes_ < capacity_ / 2) {
                full_signalled_ = false;
                // Posted before the idle notice below: once flush() returns, the drained
                // notice is on the loop already (it came after it, now and then, under load).
                if (on_drained_) boost::asio::post(io_, on_drained_);
            }
            if (queue_.empty()) {
                busy_ = false;
                idle_cv_.notify_all();
            }
        }
    }
}

void LogWriter::handle(File& f, Item& item) {
    if (item.release) {
        // A file still failing keeps its fd and its retries: its held lines come first.
        if (&f != &stdout_ && f.held.empty() && f.fd >= 0) {
            ::close(f.fd);
            f.fd = -1;
        }
        return;
    }
    const bool holds = item.keep && &f != &stdout_;
    if (!f.held.empty()) {
        hold(f, std::move(item));  // behind lines that wait for this file, in order
        return;
    }
    if (f.err && !holds && Clock::now() < f.retry_at) {
        lose(f, item);  // queued before the failure; tried again only when due
        return;
    }
    const int err = write_out(f, item);
    if (err == 0) {
        if (f.err) recovered(f);
        return;
    }
    failed(f, err, item);
    if (holds)
        hold(f, std::move(item));
    else
        lose(f, item);
}

void LogWriter::hold(File& f, Item item) {
    if (f.held.empty()) holding_.push_back(&f);
    f.held.push_back(std::move(item));
    publish(f);
}

void LogWriter::lose(File& f, Item& item) {
    const std::uint64_t n =
        count_lines(item.data, item.buf ? item.buf.data.get() + item.off : nullptr, item.len);
    // The start of its first line is in the file: end it, so the next line is not joined on.
    if (item.mid_line) f.torn = true;
    f.lost += n;
    Event ev;
    ev.account = item.account;
    ev.path = f.path;
    ev.lost = n;
    post(std::move(ev));
}

void LogWriter::retry_held(File& f) {
    while (!f.held.empty()) {
        Item& item = f.held.front();
        if (int err = write_out(f, item); err != 0) {
            failed(f, err, item);
            return;
        }
        {
            std::lock_guard lock(mu_);
            if (item.buf && spare_.size() < 4) spare_.push_back(std::move(item.buf));
        }
        f.held.pop_front();
    }
    std::erase(holding_, &f);
    recovered(f);
    // The streams stopped for this file may read again.
    if (on_drained_) boost::asio::post(io_, on_drained_);
}

void LogWriter::failed(File& f, int err, const Item& item) {
    const auto now = Clock::now();
    Event ev;
    ev.account = item.account;
    ev.path = f.path;
    ev.errors = 1;
    if (!f.err) {
        f.backoff =
            f.recovered_at.time_since_epoch().count() != 0 && now - f.recovered_at < kSettled
                ? std::clamp(f.backoff * 2, kRetryFirst, kRetryMax)
                : kRetryFirst;
        f.since = now;
        f.lost = 0;
        ev.started = true;
        ev.held = item.keep && &f != &stdout_;
    } else {
        f.backoff = std::clamp(f.backoff * 2, kRetryFirst, kRetryMax);
    }
    f.err = err;
    f.account = item.account;
    f.retry_at = now + f.backoff;
    ev.what = std::string(f.opening ? "cannot open " : "cannot write ") + f.path + ": " +
              std::strerror(err);
    {
        std::lock_guard lock(mu_);
        ++errors_;
    }
    publish(f);
    post(std::move(ev));
}

void LogWriter::recovered(File& f) {
    const auto now = Clock::now();
    Event ev;
    ev.account = f.account;
    ev.path = f.path;
    ev.recovered = true;
    ev.lost_in_episode = f.lost;
    ev.failed_for = now - f.since;
    f.err = 0;
    f.opening = false;
    f.recovered_at = now;
    publish(f);
    post(std::move(ev));
}

void LogWriter::publish(File& f) {
    std::lock_guard lock(mu_);
    f.shared_failing = f.err != 0;
    f.shared_holding = !f.held.empty();
    f.shared_retry_at = f.retry_at;
}

void LogWriter::post(Event ev) {
    if (!on_event_) return;
    boost::asio::post(io_, [f = on_event_, ev = std::move(ev)] { f(ev); });
}

namespace {

// Drops the first n bytes of an item: its data, then its buffer's run.
template <class ItemT>
void consume(ItemT& item, std::size_t n) {
    const std::size_t from_data = std::min(n, item.data.size());
    item.data.erase(0, from_data);
    n -= from_data;
    item.off += n;
    item.len -= n;
}

}  // namespace

int LogWriter::write_out(File& f, Item& item) {
    const bool is_stdout = &f == &stdout_;
    if (!is_stdout) {
        // (Not in the middle of a line: its start is in this file.)
        if (f.max_size > 0 && f.size > 0 && f.size + item.size() > f.max_size && !item.mid_line)
            rotate(f);
        if (f.fd < 0) {
            if (!open_file(f)) {
                const int err = errno;
                f.opening = true;
                return err;
            }
            f.opening = false;
        }
    }
    auto write_all = [&](iovec* iov, std::size_t total, std::size_t& done) -> int {
        std::size_t first = iov[0].iov_len == 0 ? 1 : 0;
        while (done < total) {
            // One write(2) for both parts; a short write moves the start on.
            ssize_t n = writev_(f.fd, iov + first, static_cast<int>(2 - first));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) {
                // A non-blocking stdout that is full: wait until it takes more, on this thread.
                pollfd p{f.fd, POLLOUT, 0};
                ::poll(&p, 1, -1);
                continue;
            }
            if (n <= 0) return n < 0 ? errno : EIO;
            done += static_cast<std::size_t>(n);
            for (auto left = static_cast<std::size_t>(n); left > 0 && first < 2;) {
                const std::size_t step = std::min(left, iov[first].iov_len);
                iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + step;
                iov[first].iov_len -= step;
                left -= step;
                if (iov[first].iov_len == 0) ++first;
            }
            while (first < 2 && iov[first].iov_len == 0)
                ++first;
        }
        return 0;
    };
    if (f.torn) {
        // A line cut short that could not be cut off: end it, or the next would join it.
        char nl = '\n';
        iovec iov[2] = {{&nl, 1}, {nullptr, 0}};
        std::size_t done = 0;
        if (int err = write_all(iov, 1, done); err != 0) return err;
        f.torn = false;
        f.size += 1;
    }
    const std::size_t total = item.size();
    iovec iov[2] = {{const_cast<char*>(item.data.data()), item.data.size()},
                    {item.buf ? item.buf.data.get() + item.off : nullptr, item.len}};
    std::size_t done = 0;
    if (int err = write_all(iov, total, done); err != 0) {
        unwind(f, item, done);
        return err;
    }
    f.size += total;
    return 0;
}

// A file holds whole lines only: a reader, and the drop count, must never see half of one.
// A full disk takes what fits and then fails, so a write can stop anywhere. The item began
// on a line boundary (items hold whole lines, and an unwound one is cut back to a boundary),
// and O_APPEND put the `done` bytes it did take at the end of the file. What follows the
// last '\n' among them is a line whose end is missing: ftruncate cuts it off again (that
// needs no space), and it stays in the item, to be written again whole (block) or counted
// as lost (drop). Where the file cannot be cut (stdout, a FIFO, an error), the item keeps
// only what was not written and is marked mid_line: a retry completes the line, and a loss
// makes the next write to the file begin with '\n', so a cut line never swallows the next.
void LogWriter::unwind(File& f, Item& item, std::size_t done) {
    if (done == 0) return;
    // Bytes [0, whole) of the item, written, end in '\n' (0: none of them does).
    std::size_t whole = 0;
    const std::size_t from_data = std::min(done, item.data.size());
    if (done > from_data) {
        const char* run = item.buf.data.get() + item.off;
        if (const void* nl = ::memrchr(run, '\n', done - from_data))
            whole = from_data + static_cast<std::size_t>(static_cast<const char*>(nl) - run) + 1;
    }
    if (whole == 0 && from_data > 0) {
        if (const void* nl = ::memrchr(item.data.data(), '\n', from_data))
            whole = static_cast<std::size_t>(static_cast<const char*>(nl) - item.data.data()) + 1;
    }
    std::size_t keep = done;
    const bool was_mid = item.mid_line && whole == 0;
    item.mid_line = false;
    struct stat st {};
    const bool regular = &f != &stdout_ && ::fstat(f.fd, &st) == 0 && S_ISREG(st.st_mode);
    if (whole < done) {
        const auto cut = static_cast<off_t>(done - whole);
        if (regular && !was_mid && st.st_size >= cut && ::ftruncate(f.fd, st.st_size - cut) == 0) {
            keep = whole;
            st.st_size -= cut;
        } else {
            item.mid_line = true;
        }
    }
    if (regular) f.size = static_cast<std::uint64_t>(st.st_size);
    consume(item, keep);
}

void LogWriter::do_reopen(std::vector<std::function<void(std::vector<std::string>)>> done) {
    std::vector<std::string> failures;
    const auto now = Clock::now();
    for (File* f : seen_) {
        if (f->fd < 0 && !f->err && !f->moved) continue;  // not open: opened at its next write
        if (f->fd >= 0) ::close(f->fd);
        f->fd = -1;
        if (!open_file(*f)) {
            failures.push_back(f->path + ": " + std::strerror(errno));
            continue;
        }
        if (f->err) {
            f->retry_at = now;  // opens again: try what it holds at once
            publish(*f);
        }
    }
    boost::asio::post(io_, [failures = std::move(failures), done = std::move(done)] {
        for (const auto& why : failures)
            spdlog::error("reopen: cannot open {}", why);
        for (const auto& d : done)
            if (d) d(failures);
    });
}

bool LogWriter::open_file(File& f) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(f.path).parent_path(), ec);
    // O_NOFOLLOW: a symlink planted at the log path must not redirect our writes.
    f.fd = ::open(f.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (f.fd < 0) return false;
    f.fd = spawn::park_high(f.fd);  // per-worker files would crowd what every spawn copies
    f.moved = false;
    struct stat st {};
    if (::fstat(f.fd, &st) == 0) {
        f.size = static_cast<std::uint64_t>(st.st_size);
        f.ino = st.st_ino;
    }
    return true;
}

// Renames POOL.out -> POOL.out.1 -> ... -> POOL.out.KEEP (the oldest falls off) and starts
// a new file. Rename, never truncate: a reader following the old file keeps its data.
void LogWriter::rotate(File& f) {
    if (f.fd >= 0) ::close(f.fd);
    f.fd = -1;
    if (f.keep <= 0) {
        ::unlink(f.path.c_str());
    } else {
        ::unlink((f.path + "." + std::to_string(f.keep)).c_str());
        for (int i = f.keep - 1; i >= 1; --i)
            ::rename((f.path + "." + std::to_string(i)).c_str(),
                     (f.path + "." + std::to_string(i + 1)).c_str());
        ::rename(f.path.c_str(), (f.path + ".1").c_str());
    }
    f.size = 0;
    f.torn = false;  // the cut line stays in the old file; the new one starts clean
    std::lock_guard lock(mu_);
    ++rotations_;
}

void LogWriter::check_moved(File& f) {
    if (f.fd < 0) return;
    struct stat st {};
    if (::stat(f.path.c_str(), &st) != 0 || static_cast<std::uint64_t>(st.st_ino) != f.ino) {
        ::close(f.fd);
        f.fd = -1;  // reopened (recreated) on the next write
        f.moved = true;
    }
}

}  // namespace cow
