// The one thread that writes worker output to its sinks: the daemon's stdout (console and
// json sinks) and log files (file sinks), with size rotation. The loop hands it whole lines
// in batches and never blocks on a slow disk or a full stdout pipe; when the queue is over
// capacity the loop either stops reading (block) or drops (drop), per pool.
//
// A write error (a full disk, EIO, a directory gone or not writable) is a slow sink too: a
// file that fails holds what it was given under block, and the loop stops reading the
// streams that write to it until a retry (on a bounded, growing timer) gets through; under
// drop its lines are lost and reported back, so that the drop counter stays exact. A file
// only ever holds whole lines (see unwind()).
// log_writer.cpp is about 600 lines: rotation, write retries and back-pressure all turn on the one
// queue and its lock, and are kept beside it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <sys/uio.h>

#include "config/config.hpp"

namespace cow {

// The directory file sinks write to, created now if a pool has a file sink: "" when ready,
// else a sentence naming the path and the reason. For --check, startup and reload, so that a
// log_dir that cannot be used is a config error rather than output silently lost.
std::string prepare_log_dir(const config::Config& cfg);

class LogWriter {
  public:
    // write(2) for the sinks, replaceable in tests (a disk that fills up and frees space).
    using WriteFn = std::function<ssize_t(int fd, const iovec* iov, int iovcnt)>;
    explicit LogWriter(boost::asio::io_context& io, std::size_t capacity_bytes = 8u << 20,
                       WriteFn writev = {});
    ~LogWriter();  // writes what is queued (a failing file gets one more try), then joins
    LogWriter(const LogWriter&) = delete;
    LogWriter& operator=(const LogWriter&) = delete;

    static constexpr int kStdout = 0;
    // A file sink, created (with its directory) on first write. Returns its target id; the
    // same path always gives the same id.
    int file_target(const std::string& path, std::uint64_t max_size, int keep);
    // Nothing writes to the target any more (its pool or worker is gone): its file is closed
    // once what was queued before is written; a later write opens it again.
    void release(int target);

    // Where a write goes, whose it is, and what a write error does to it.
    struct Dest {
        int target = kStdout;
        std::uint32_t account = 0;  // handed back with the lines lost and errors it caused
        bool keep = true;  // block: held and retried; drop: lost and counted (stdout: always)
        Dest(int t = kStdout, std::uint32_t a = 0, bool k = true)  // NOLINT: from a target
            : target(t), account(a), keep(k) {}
    };

    // Queues whole lines. Returns false, queueing nothing, when the queue is over capacity or
    // (d.keep false) the target's file is failing and not due for a retry: the caller then
    // stops reading (block) or counts the lines dropped (drop).
    bool write(Dest d, std::string bytes);
    // Queues even over capacity: for lines already read from a worker when the loop decides
    // to stop reading (the excess is bounded by one read per stream).
    void write_anyway(Dest d, std::string bytes);

    // A read buffer that can be queued whole, so that a file sink's bytes are copied only by
    // the kernel: into the buffer by read(2) and out of it by write(2). A flood of lines
    // otherwise spent a third of the daemon's time copying them into batches.
    struct Buffer {
        std::unique_ptr<char[]> data;
        std::size_t capacity = 0;
        explicit operator bool() const { return data != nullptr; }
    };
    static constexpr std::size_t kBufferSize = 256 * 1024;  // the size cowherd grows pipes to
    // A spare written buffer, or a new one.
    Buffer take_buffer();
    // Queues head, then buf[off, off + len), whole lines, as one write. It counts against the
    // capacity as its whole buffer, which is the memory it holds. On success buf is taken (it
    // comes back through take_buffer once written); refused (as write() refuses, unless
    // anyway) it is left with the caller.
    bool write(Dest d, std::string head, Buffer& buf, std::size_t off, std::size_t len,
               bool anyway);
    bool over_capacity() const;
    // Whether a block stream writing to target may read more: the queue has room and the
    // target holds nothing for a failing file.
    bool room_for(int target) const;
    // Runs on the loop once the queue has drained below half after being over capacity, and
    // when a failing file has taken what it held: streams stopped for either may read again.
    void on_drained(std::function<void()> f) { on_drained_ = std::move(f); }

    // What a write error did, reported on the loop.
    struct Event {
        std::uint32_t account = 0;
        std::string path;                   // the file, or "stdout"
        std::string what;                   // "cannot write /x/a.out: No space left on device"
        bool started = false;               // the first error after the file was fine: say it once
        bool recovered = false;             // it takes writes again, after `failed_for`
        bool held = false;                  // started: its lines are held and retried (block)
        std::uint64_t lost = 0;             // lines lost (drop, stdout, or held at exit)
        std::uint64_t errors = 0;           // failed write or open calls
        std::uint64_t lost_in_episode = 0;  // recovered: lines lost since it started
        std::chrono::steady_clock::duration failed_for{};
    };
    void on_event(std::function<void(const Event&)> f) { on_event_ = std::move(f); }

    // Closes and reopens every file in use (SIGUSR1, `cowctl reopen`), for an external
    // logrotate. done (on the loop) gets "path: reason" for each file that could not be
    // opened; those are retried like any failing file.
    void reopen(std::function<void(std::vector<std::string>)> done = {});
    // Blocks until everything queued so far is written or held for a failing file.
    void flush();

    std::uint64_t rotations() const;
    std::uint64_t write_errors() const;

  private:
    using Clock = std::chrono::steady_clock;
    struct Item {
        int target;
        std::string data;
        Buffer buf;  // then buf[off, off + len), when set
        std::size_t off = 0, len = 0;
        std::uint32_t account = 0;
        bool keep = true;
        bool mid_line = false;  // a short write left the start of its first line in the file
        bool release = false;   // not a write: close the file (release())
        std::size_t cost() const { return data.size() + buf.capacity; }
        std::size_t size() const { return data.size() + len; }
    };
    struct File {
        std::string path;
        std::uint64_t max_size;
        int keep;
        int fd = -1;
        std::uint64_t size = 0;
        std::uint64_t ino = 0;
        bool moved = false;  // closed when found moved away: reopened by its next write
        // Write errors, on the writer thread.
        int err = 0;           // errno of the failure going on; 0 while it is fine
        bool opening = false;  // the failure is in open(2), not write(2)
        bool torn = false;     // it ends in part of a line that could not be cut off
        Clock::time_point since{}, retry_at{}, recovered_at{};
        Clock::duration backoff{};
        std::deque<Item> held;   // block: in order, until a retry gets through
        std::uint64_t lost = 0;  // lines lost since the failure started
        std::uint32_t account = 0;
        // The same state as the loop sees it, under mu_.
        bool shared_failing = false, shared_holding = false;
        Clock::time_point shared_retry_at{};
    };
    void loop();
    File& file_of(int target);      // under mu_
    File& writer_file(int target);  // on the writer thread
    void handle(File& f, Item& item);
    int write_out(File& f, Item& item);  // 0, or the errno; item keeps what was not written
    void unwind(File& f, Item& item, std::size_t done);
    void failed(File& f, int err, const Item& item);
    void recovered(File& f);
    void hold(File& f, Item item);
    void lose(File& f, Item& item);
    void retry_held(File& f);
    void publish(File& f);
    void post(Event ev);
    bool open_file(File& f);
    void rotate(File& f);
    void check_moved(File& f);
    void do_reopen(std::vector<std::function<void(std::vector<std::string>)>> done);

    boost::asio::io_context& io_;
    const std::size_t capacity_;
    WriteFn writev_;
    mutable std::mutex mu_;
    std::condition_variable cv_, idle_cv_;
    std::deque<Item> queue_;
    std::size_t queued_bytes_ = 0;
    bool full_signalled_ = false;  // over capacity since the last on_drained
    bool busy_ = false;
    bool stop_ = false;
    bool reopen_ = false;
    std::vector<std::function<void(std::vector<std::string>)>> reopen_done_;
    // index = target - 1. The vector changes under mu_ (the loop adds targets); each File is
    // touched only by the writer thread, through a pointer it takes under mu_, except for
    // its shared_ fields, which are under mu_.
    std::vector<std::unique_ptr<File>> files_;
    File stdout_{"stdout", 0, 0, 1};
    // Writer thread only: its view of files_, and the files that hold lines for a retry.
    std::vector<File*> seen_;
    std::vector<File*> holding_;
    std::vector<Buffer> spare_;  // written buffers, for take_buffer
    std::unordered_map<std::string, int> by_path_;
    std::uint64_t rotations_ = 0, errors_ = 0;
    std::function<void()> on_drained_;
    std::function<void(const Event&)> on_event_;
    std::thread thread_;
};

}  // namespace cow
