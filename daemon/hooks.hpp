// on_exit and on_fatal: a pool's commands run with the event as JSON on stdin, so that
// alerting needs no polling. They run after the batch of events that caused them, at most
// kRunning at once and kQueued waiting (past that a hook is skipped, counted and logged), each
// cut at its pool's hook_timeout. A hook that fails is logged and becomes a `hook` event.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>

#include "daemon/os/helpers.hpp"
#include "daemon/supervise/supervisor.hpp"

namespace cow {

class Hooks {
  public:
    static constexpr std::size_t kRunning = 4;
    static constexpr std::size_t kQueued = 64;
    Hooks(boost::asio::io_context& io, Supervisor& sup, int devnull);

    // Every event passes here; those with a hook start it.
    void on_event(const EventRecord& e);
    // A reaped pid of a hook: true when it was one.
    bool reaped(pid_t pid, int status) { return helpers_.reaped(pid, status); }
    std::uint64_t skipped() const { return helpers_.refused(); }

  private:
    boost::asio::io_context& io_;
    Supervisor& sup_;
    Helpers helpers_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  public:
    ~Hooks() { *alive_ = false; }
};

}  // namespace cow
