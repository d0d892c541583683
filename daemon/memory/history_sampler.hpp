// Samples every running worker's tree every daemon.memory.sample_every, off the loop (the
// Background thread reads /proc), into the History; judges each worker's USS trend against
// its siblings' (a leak is one that grows steadily while they do not).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "daemon/memory/history.hpp"
#include "daemon/memory/memory_sampler.hpp"
#include "daemon/os/background.hpp"
#include "daemon/supervise/supervisor.hpp"

namespace cow {

namespace mem {

// A pool's template is sampled as the slot "POOL.template".
inline constexpr std::string_view kTemplateSuffix = ".template";

// What `mem` and `top` say of one worker's trend.
struct Assessment {
    std::optional<Trend> trend;
    bool leak = false;
    std::optional<double> recycle_in_s;  // at this rate, when max_private would be reached
};

// A worker leaks when its USS grows steadily (a line fits: r² >= kLeakFit), by at least
// kLeakPerHour and by kLeakMin over the window, while the median of its siblings' slopes is
// under a quarter of its own. `slots` are one pool's workers.
inline constexpr double kLeakFit = 0.8;
inline constexpr double kLeakPerHour = 1024.0 * 1024.0;  // bytes
inline constexpr double kLeakMin = 1024.0 * 1024.0;      // bytes over the window
// Beyond this, a predicted recycle says nothing (a flat worker's noise): none is given.
inline constexpr double kRecycleHorizonS = 30.0 * 24 * 3600;
std::vector<Assessment> assess(const History& h, const std::vector<std::string>& slots,
                               std::int64_t since_ms, std::optional<std::uint64_t> max_private);
boost::json::object assessment_json(const Assessment& a);

}  // namespace mem

class HistorySampler {
  public:
    HistorySampler(boost::asio::io_context& io, Supervisor& sup, Background& bg,
                   mem::Sampler& sampler);
    // Reads daemon.memory.sample_every afresh (startup, reload); 0 stops sampling.
    void configure(Millis every);
    void stop();

    const mem::History& history() const { return history_; }
    Millis every() const { return every_; }
    // Milliseconds since the last sample landed; nullopt before the first.
    std::optional<std::int64_t> sampled_ago_ms() const;
    std::uint64_t samples() const { return samples_; }
    // Each worker's trend over the last hour, judged against its siblings, by worker name:
    // recomputed when a sample lands, so `top` and `mem` only look it up.
    const std::unordered_map<std::string, boost::json::object>& trends() const { return trends_; }
    std::int64_t now_ms() const;

  private:
    void arm();
    void tick();

    boost::asio::io_context& io_;
    Supervisor& sup_;
    Background& bg_;
    mem::Sampler& sampler_;
    mem::History history_;
    Millis every_{0};
    boost::asio::steady_timer timer_;
    std::chrono::steady_clock::time_point next_{};
    bool in_flight_ = false;
    bool stopped_ = false;
    void assess_all();

    std::optional<std::int64_t> last_ms_;
    std::unordered_map<std::string, boost::json::object> trends_;
    std::uint64_t samples_ = 0;
};

}  // namespace cow
