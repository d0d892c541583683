// Readiness and liveness probes (config: `readiness`, `liveness`), scheduled on the loop and
// run off it: HTTP and TCP on the Checker's thread, commands as Helpers. A readiness probe
// runs while a worker is starting and its first pass makes it running (rolls wait for that,
// as for READY=1); a liveness probe runs while it is running, and `failures` in a row restart
// it (cause killed_by_cowherd: liveness probe). At most kMaxInFlight probes run at once; a
// worker's next probe is never started while its last is out.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/os/helpers.hpp"
#include "daemon/probe/checker.hpp"
#include "daemon/supervise/supervisor.hpp"

namespace cow {

class Prober {
  public:
    static constexpr std::size_t kMaxInFlight = 128;
    Prober(boost::asio::io_context& io, Supervisor& sup, Helpers& helpers,
           std::function<void()> after);
    ~Prober();

    // Looks for due probes now and then every tick; call again after a reload.
    void start();

    std::uint64_t runs() const { return runs_; }
    std::uint64_t failures() const { return failed_; }

  private:
    enum class Phase { readiness, liveness };
    struct State {
        pid_t pid = 0;
        Phase phase = Phase::readiness;
        fsm::TimePoint next_at{};
        int fails = 0;
        bool in_flight = false;
        std::uint64_t seen = 0;  // the last tick that visited it
    };
    void tick();
    void launch(Worker& w, State& st, const config::ProbeConfig& pc);
    void result(std::uint64_t worker_id, pid_t pid, Phase phase, bool ok,
                const std::string& detail);

    boost::asio::io_context& io_;
    Supervisor& sup_;
    Helpers& helpers_;
    std::function<void()> after_;
    probe::Checker checker_;
    boost::asio::steady_timer timer_;
    std::unordered_map<std::uint64_t, State> states_;  // by worker id
    std::size_t in_flight_ = 0;
    std::uint64_t tick_ = 0;
    std::uint64_t runs_ = 0, failed_ = 0;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace cow
