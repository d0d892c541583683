// Worker output capture (design §3.6): each worker slot has a stdout and a stderr pipe whose
// read ends the daemon keeps for the slot's whole life, so a restart loses nothing in flight
// (as s6 and runit do). Each spawn gets fresh write ends, reopened from the read end through
// /proc/self/fd, so the daemon holds two fds per worker and no more. Lines go to the pool's
// sinks (console, file, json; inherit skips capture), to a bounded ring per worker for
// `cowctl logs`, and to followers (`cowctl logs -f`).
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <unistd.h>

#include "config/config.hpp"
#include "daemon/logs/follow.hpp"
#include "daemon/logs/line_splitter.hpp"
#include "daemon/logs/log_writer.hpp"
#include "daemon/supervise/output_hooks.hpp"
#include "daemon/supervise/worker.hpp"

namespace cow {

class ItemStream;

struct LogLine {
    std::int64_t ts_ms;  // wall clock, for display only
    pid_t pid;
    bool err;          // stderr
    bool continued;    // a piece of a line longer than log_line_max
    std::string text;  // raw bytes
    // Counts the worker slot's lines of this stream from 1, across restarts and upgrades: a
    // follower that reconnects (cowctl logs -f after an upgrade) skips what it has seen and
    // can tell what the ring no longer holds.
    std::uint64_t seq = 0;
};

struct PoolLogStats {
    std::uint64_t lines[2] = {0, 0};  // stdout, stderr
    std::uint64_t bytes[2] = {0, 0};
    // Lines lost: log_backpressure: drop, or a sink that failed (a full disk, a closed stdout).
    std::uint64_t dropped = 0;
    std::uint64_t write_errors[2] = {0, 0};  // failed writes (and opens) of a sink, retries too
};

class Output : public OutputHooks {
  public:
    Output(boost::asio::io_context& io, LogWriter& writer, const config::DaemonConfig& daemon);
    ~Output() override;

    std::pair<int, int> before_spawn(Worker& w) override;
    void after_spawn(Worker& w, pid_t pid) override;
    void worker_removed(Worker& w) override;
    void pool_removed(const std::string& pool) override;

    void set_daemon_config(const config::DaemonConfig& d) { daemon_ = d; }
    // At exit: reads every pipe dry (the workers are gone), so nothing written is lost.
    void drain_all();

    // The last n lines of the given workers (both streams unless one is chosen), oldest
    // first, no older than since_ms (wall clock ms, 0 = any).
    std::vector<std::pair<const Worker*, LogLine>> tail(const std::vector<Worker*>& ws,
                                                        std::size_t n, int stream,
                                                        std::int64_t since_ms) const;
    // `logs -f`: every new line of the target (as it is at each line: workers added later
    // included) goes to resp as an item until the client or the target goes away.
    void follow(FollowTarget target, int stream, std::shared_ptr<ItemStream> resp);
    static boost::json::object line_json(const Worker& w, const LogLine& l);

    // In-place upgrade: the captures (pipes, partial lines, rings) and counters the next image
    // takes up, the fds they name, and taking them up (after the supervisor's slots).
    boost::json::object save_state() const;
    std::vector<int> handover_fds() const;
    void restore_state(const boost::json::object& state,
                       const std::function<Worker*(std::uint64_t)>& find);

    const std::map<std::string, PoolLogStats>& stats() const { return stats_; }
    std::size_t followers() const { return followers_.size(); }

  private:
    struct Stream;
    struct Capture;
    Capture& capture_of(Worker& w);
    void arm(Stream& s);
    void pump(Stream& s);
    void linger(Stream& s);
    void end_linger(const boost::system::error_code& ec);
    // chunk: what was just read; when it lies in *owner (the read buffer), a file sink's run
    // of whole lines may be queued in that buffer itself rather than copied.
    void deliver(Stream& s, std::string_view chunk, bool eof, LogWriter::Buffer* owner = nullptr);
    void resume_all();
    // The sink target of a stream under its pool's config now.
    int target_of(const Stream& s);
    void erase_capture(std::uint64_t worker_id);
    // Where the writer reports the lines lost and the errors of a write: pool and stream.
    std::uint32_t account_of(const std::string& pool);
    void on_write_event(const LogWriter::Event& ev);

    boost::asio::io_context& io_;
    LogWriter& writer_;
    config::DaemonConfig daemon_;
    std::unordered_map<std::uint64_t, std::unique_ptr<Capture>> captures_;  // by worker id
    std::vector<Stream*> paused_;
    std::vector<std::pair<std::uint64_t, bool>> lingering_;  // (worker id, stderr)
    std::map<std::string, PoolLogStats> stats_;
    std::vector<std::string> accounts_;  // pool by account / 2 (account % 2: stderr)
    std::unordered_map<std::string, std::uint32_t> account_ids_;
    Followers followers_;
    bool color_ = false;
    int devnull_ = -1;
    LogWriter::Buffer rbuf_;                  // the read buffer; a new one when queued
    const bool root_ = ::geteuid() == 0;      // may grow capture pipes past the default
    boost::asio::steady_timer linger_timer_;  // last: cancelled before the rest goes
    bool linger_armed_ = false;
};

}  // namespace cow
