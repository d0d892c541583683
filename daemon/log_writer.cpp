#include "daemon/log_writer.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>

#include <boost/asio/post.hpp>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "daemon/spawn.hpp"

namespace cow {

LogWriter::LogWriter(boost::asio::io_context& io, std::size_t capacity)
    : io_(io), capacity_(capacity) {
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

bool LogWriter::over_capacity() const {
    std::lock_guard lock(mu_);
    return queued_bytes_ >= capacity_;
}

bool LogWriter::write(int target, std::string bytes) {
    if (bytes.empty()) return true;
    {
        std::lock_guard lock(mu_);
        if (queued_bytes_ >= capacity_) {
            full_signalled_ = true;
            return false;
        }
        queued_bytes_ += bytes.size();
        // Coalesce with the previous batch for the same target: fewer, larger writes.
        // (Not onto a buffer item: its buffer's bytes go after its data.)
        if (!queue_.empty() && queue_.back().target == target && !queue_.back().buf &&
            queue_.back().data.size() < 65536)
            queue_.back().data.append(bytes);
        else
            queue_.push_back(Item{target, std::move(bytes)});
    }
    cv_.notify_one();
    return true;
}

void LogWriter::write_anyway(int target, std::string bytes) {
    if (bytes.empty()) return;
    {
        std::lock_guard lock(mu_);
        queued_bytes_ += bytes.size();
        if (queued_bytes_ >= capacity_) full_signalled_ = true;
        queue_.push_back(Item{target, std::move(bytes)});
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

bool LogWriter::write(int target, std::string head, Buffer& buf, std::size_t off, std::size_t len,
                      bool anyway) {
    {
        std::lock_guard lock(mu_);
        if (queued_bytes_ >= capacity_ && !anyway) {
            full_signalled_ = true;
            return false;
        }
        Item item{target, std::move(head), std::move(buf), off, len};
        queued_bytes_ += item.cost();
        if (queued_bytes_ >= capacity_) full_signalled_ = true;
        queue_.push_back(std::move(item));
    }
    cv_.notify_one();
    return true;
}

void LogWriter::reopen() {
    {
        std::lock_guard lock(mu_);
        reopen_ = true;
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
    auto last_check = std::chrono::steady_clock::now();
    for (;;) {
        Item item;
        bool have = false, reopen = false;
        std::vector<File*> files;
        {
            std::unique_lock lock(mu_);
            cv_.wait_for(lock, std::chrono::seconds(1),
                         [this] { return stop_ || reopen_ || !queue_.empty(); });
            if (queue_.empty()) {
                busy_ = false;
                idle_cv_.notify_all();
            }
            if (stop_ && queue_.empty()) return;
            reopen = reopen_;
            reopen_ = false;
            for (auto& f : files_)
                files.push_back(f.get());
            if (!queue_.empty()) {
                item = std::move(queue_.front());
                queue_.pop_front();
                have = busy_ = true;
            }
        }
        if (reopen) {
            for (File* f : files) {
                if (f->fd >= 0) ::close(f->fd);
                f->fd = -1;
            }
        }
        // A file deleted or moved away by someone else is noticed within a second.
        auto now = std::chrono::steady_clock::now();
        if (now - last_check >= std::chrono::seconds(1)) {
            last_check = now;
            for (File* f : files)
                check_moved(*f);
        }
        if (!have) continue;
        write_out(
            item.target == kStdout ? nullptr : files[static_cast<std::size_t>(item.target - 1)],
            item);
        std::function<void()> drained;
        {
            std::lock_guard lock(mu_);
            queued_bytes_ -= item.cost();
            // A few spares cover a flood; more would only hold memory a burst once needed.
            if (item.buf && spare_.size() < 4) spare_.push_back(std::move(item.buf));
            if (full_signalled_ && queued_bytes_ < capacity_ / 2) {
                full_signalled_ = false;
                drained = on_drained_;
            }
            if (queue_.empty()) {
                busy_ = false;
                idle_cv_.notify_all();
            }
        }
        if (drained) boost::asio::post(io_, drained);
    }
}

void LogWriter::write_out(File* f, const Item& item) {
    const std::size_t total = item.data.size() + item.len;
    int fd;
    if (!f) {
        fd = STDOUT_FILENO;
    } else {
        if (f->max_size > 0 && f->size > 0 && f->size + total > f->max_size) rotate(*f);
        if (f->fd < 0 && !open_file(*f)) {
            std::lock_guard lock(mu_);
            ++errors_;
            return;
        }
        fd = f->fd;
    }
    iovec iov[2] = {{const_cast<char*>(item.data.data()), item.data.size()},
                    {item.buf ? item.buf.data.get() + item.off : nullptr, item.len}};
    std::size_t first = item.data.empty() ? 1 : 0, done = 0;
    while (done < total) {
        // One write(2) for both parts; a short write moves the start on.
        ssize_t n = ::writev(fd, iov + first, static_cast<int>(2 - first));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            // A non-blocking stdout that is full: wait until it takes more, on this thread.
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, -1);
            continue;
        }
        if (n <= 0) {
            std::lock_guard lock(mu_);
            ++errors_;
            return;
        }
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
    if (f) f->size += total;
}

bool LogWriter::open_file(File& f) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(f.path).parent_path(), ec);
    // O_NOFOLLOW: a symlink planted at the log path must not redirect our writes.
    f.fd = ::open(f.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (f.fd < 0) return false;
    f.fd = spawn::park_high(f.fd);  // per-worker files would crowd what every spawn copies
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
    std::lock_guard lock(mu_);
    ++rotations_;
}

void LogWriter::check_moved(File& f) {
    if (f.fd < 0) return;
    struct stat st {};
    if (::stat(f.path.c_str(), &st) != 0 || static_cast<std::uint64_t>(st.st_ino) != f.ino) {
        ::close(f.fd);
        f.fd = -1;  // reopened (recreated) on the next write
    }
}

}  // namespace cow
