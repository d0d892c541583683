// The one thread that writes worker output to its sinks: the daemon's stdout (console and
// json sinks) and log files (file sinks), with size rotation. The loop hands it whole lines
// in batches and never blocks on a slow disk or a full stdout pipe; when the queue is over
// capacity the loop either stops reading (block) or drops (drop), per pool.
#pragma once

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

namespace cow {

class LogWriter {
  public:
    LogWriter(boost::asio::io_context& io, std::size_t capacity_bytes = 8u << 20);
    ~LogWriter();  // writes what is queued, then joins
    LogWriter(const LogWriter&) = delete;
    LogWriter& operator=(const LogWriter&) = delete;

    static constexpr int kStdout = 0;
    // A file sink, created (with its directory) on first write. Returns its target id; the
    // same path always gives the same id.
    int file_target(const std::string& path, std::uint64_t max_size, int keep);

    // Queues whole lines for a target. Returns false, queueing nothing, when the queue is over
    // capacity: the caller then stops reading (block) or counts the lines dropped (drop).
    bool write(int target, std::string bytes);
    // Queues even over capacity: for lines already read from a worker when the loop decides
    // to stop reading (the excess is bounded by one read per stream).
    void write_anyway(int target, std::string bytes);

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
    // comes back through take_buffer once written); refused (over capacity, !anyway) it is
    // left with the caller.
    bool write(int target, std::string head, Buffer& buf, std::size_t off, std::size_t len,
               bool anyway);
    bool over_capacity() const;
    // Runs on the loop once the queue has drained below half after being over capacity.
    void on_drained(std::function<void()> f) { on_drained_ = std::move(f); }
    // Closes and reopens every file (SIGUSR1, `cowctl reopen`), for an external logrotate.
    void reopen();
    // Blocks until everything queued so far is written (tests, shutdown).
    void flush();

    std::uint64_t rotations() const;
    std::uint64_t write_errors() const;

  private:
    struct File {
        std::string path;
        std::uint64_t max_size;
        int keep;
        int fd = -1;
        std::uint64_t size = 0;
        std::uint64_t ino = 0;
    };
    struct Item {
        int target;
        std::string data;
        Buffer buf;  // then buf[off, off + len), when set
        std::size_t off = 0, len = 0;
        std::size_t cost() const { return data.size() + buf.capacity; }
    };
    void loop();
    void write_out(File* f, const Item& item);  // f null: our stdout
    bool open_file(File& f);
    void rotate(File& f);
    void check_moved(File& f);

    boost::asio::io_context& io_;
    const std::size_t capacity_;
    mutable std::mutex mu_;
    std::condition_variable cv_, idle_cv_;
    std::deque<Item> queue_;
    std::size_t queued_bytes_ = 0;
    bool full_signalled_ = false;  // over capacity since the last on_drained
    bool busy_ = false;
    bool stop_ = false;
    bool reopen_ = false;
    // index = target - 1. The vector changes under mu_ (the loop adds targets); each File is
    // touched only by the writer thread, through a pointer it takes under mu_.
    std::vector<std::unique_ptr<File>> files_;
    std::vector<Buffer> spare_;  // written buffers, for take_buffer
    std::unordered_map<std::string, int> by_path_;
    std::uint64_t rotations_ = 0, errors_ = 0;
    std::function<void()> on_drained_;
    std::thread thread_;
};

}  // namespace cow
