// The network side of probes: HTTP GETs and TCP connects, on a thread of their own with its own
// io_context, so that a thousand probes a second never take the loop's time; each outcome is
// posted back to the loop. Every check is cut at its timeout. HTTP connections are kept alive
// between probes (at most 30 s each); TCP probes connect and reset.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "daemon/probe/probe_target.hpp"

namespace cow::probe {

class Pool;

struct Outcome {
    bool ok = false;
    std::string detail;  // "HTTP 503", "connect: Connection refused", "timed out after 1s"
};

struct Check {
    bool http = false;  // else a TCP connect
    Endpoint at;
    int status_min = 200, status_max = 399;
    std::chrono::milliseconds timeout{1000};
};

class Checker {
  public:
    explicit Checker(boost::asio::io_context& loop);
    ~Checker();  // cancels what is in flight and joins the thread; no outcome arrives after
    Checker(const Checker&) = delete;
    Checker& operator=(const Checker&) = delete;

    // `done` runs on the loop.
    void check(Check c, std::function<void(Outcome)> done);

  private:
    boost::asio::io_context& loop_;
    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
    std::unique_ptr<Pool> pool_;  // sockets on io_: goes before it, after the thread is joined
    std::thread thread_;
};

}  // namespace cow::probe
