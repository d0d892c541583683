// Prometheus metrics (daemon.metrics: HOST:PORT): GET /metrics in the text exposition
// format, served by Boost.Beast on the daemon's own loop. Off unless configured. The same
// listener answers kubelet's httpGet probes: GET /livez (200 whenever the loop runs the
// request: a blocked loop answers nothing, which is the failure) and GET /readyz[?pool=P]
// (200 when ready, 503 with the reasons when not, 404 for an unknown pool). Series are
// labelled {pool, worker} (the slot, never a pid, so restarts do not churn series).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <variant>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace cow {

class MetricsServer {
  public:
    // Produces the body for one scrape and hands it to `done` (possibly later: memory
    // figures are sampled off the loop).
    using Render = std::function<void(std::function<void(std::string body)> done)>;
    // /readyz: for every essential pool, or one pool ("" = all): status code and body.
    using Ready = std::function<std::pair<int, std::string>(std::string_view pool)>;

    // Or a sentence saying why it could not.
    static std::variant<std::unique_ptr<MetricsServer>, std::string> open(
        boost::asio::io_context& io, const std::string& address, Render render, Ready ready);
    ~MetricsServer();
    // How late the loop ran a timer lately (seconds): a stalled loop shows here.
    double loop_lag_seconds() const { return lag_; }
    std::uint64_t scrapes() const { return scrapes_; }

  private:
    MetricsServer(boost::asio::io_context& io, Render render, Ready ready);
    void accept();
    void tick();

    boost::asio::ip::tcp::acceptor acceptor_;
    Render render_;
    Ready ready_;
    boost::asio::steady_timer lag_timer_;
    std::chrono::steady_clock::time_point lag_due_{};
    double lag_ = 0;
    std::uint64_t scrapes_ = 0;
    int active_ = 0;
};

}  // namespace cow
