// Short commands the daemon runs for itself, not as workers: exec probes and on_exit/on_fatal
// hooks. Each gets its input on stdin (a pipe, written before it starts), /dev/null for output,
// a session of its own, and a deadline past which its whole group is SIGKILLed. At most
// max_running run at once; up to max_queued more wait, and past that a command is refused at
// once rather than queued without bound. The daemon's reaper hands their exits here first.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <sys/types.h>

#include "core/wait_status.hpp"

namespace cow {

struct HelperResult {
    bool ran = false;        // false: it could not start (error says why)
    bool timed_out = false;  // killed at its deadline
    ExitInfo exit;
    std::string error;
};

class Helpers {
  public:
    using Done = std::function<void(const HelperResult&)>;
    Helpers(boost::asio::io_context& io, int devnull, std::size_t max_running = 16,
            std::size_t max_queued = 256);
    ~Helpers();

    void run(std::vector<std::string> argv, std::string input, std::chrono::milliseconds timeout,
             Done done);
    // A reaped pid: true when it was one of ours (and its Done has run).
    bool reaped(pid_t pid, int status);

    // Told of each helper's pid as it starts and once it is reaped (so that the supervisor
    // never takes one for an orphan).
    std::function<void(pid_t)> on_started, on_reaped;

    std::size_t running() const { return running_.size(); }
    std::uint64_t refused() const { return refused_; }

  private:
    struct Job {
        std::vector<std::string> argv;
        std::string input;
        std::chrono::milliseconds timeout{};
        Done done;
    };
    struct Running {
        Done done;
        std::unique_ptr<boost::asio::steady_timer> deadline;
        bool timed_out = false;
    };
    void start(Job job);
    void next();

    boost::asio::io_context& io_;
    int devnull_;
    std::size_t max_running_, max_queued_;
    std::deque<Job> queue_;
    std::unordered_map<pid_t, Running> running_;
    std::uint64_t refused_ = 0;
};

}  // namespace cow
