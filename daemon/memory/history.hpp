// Memory over time (issue 15): each worker slot's tree figures (rss, pss, uss, swap_pss,
// cow_lost), one point per sample, in a bounded ring per slot: an hour at full resolution,
// then averaged into five-minute points for a day. A slot keeps its ring across restarts; the
// generation of each point is kept as a list of changes. Plain data, used on the loop only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/units.hpp"

namespace cow::mem {

struct Figures {
    std::uint64_t rss = 0, pss = 0, uss = 0, swap_pss = 0, cow_lost = 0;  // bytes
    Figures& operator+=(const Figures& o) {
        rss += o.rss;
        pss += o.pss;
        uss += o.uss;
        swap_pss += o.swap_pss;
        cow_lost += o.cow_lost;
        return *this;
    }
};

struct HistoryPoint {
    std::int64_t t_ms = 0;  // on the history's clock (monotonic milliseconds)
    std::uint32_t generation = 0;
    Figures f;
    bool coarse = false;  // an average of several samples (older than the full-resolution hour)
};

// A least-squares line through a slot's USS over a window, current generation only (a
// restart starts memory afresh).
struct Trend {
    double uss_per_s = 0;  // bytes per second; negative when it shrinks
    double r2 = 0;         // how well a line fits: steady growth is near 1
    std::size_t points = 0;
    std::int64_t span_ms = 0;
    std::uint64_t last_private = 0;  // the newest uss + swap_pss
};

class History {
  public:
    // `every`: the sampling interval, which sizes the full-resolution ring (one hour, at most
    // kMaxFine points). Changing it starts every ring afresh.
    explicit History(Millis every = Millis{10000});
    void set_interval(Millis every);
    Millis interval() const { return every_; }

    // One sample of a slot ("web.3"), taken at t_ms.
    void add(const std::string& slot, std::uint32_t generation, std::int64_t t_ms,
             const Figures& f);
    // Slots of pools gone (removed by a reload) or shrunk (scaled down) are dropped.
    void retain(const std::function<bool(const std::string& slot)>& keep);

    // Oldest first: coarse points, then full-resolution ones, newer than since_ms.
    std::vector<HistoryPoint> series(const std::string& slot, std::int64_t since_ms) const;
    // The newest `n` full-resolution USS values of the slot's current generation.
    std::vector<std::uint64_t> recent_uss(const std::string& slot, std::size_t n) const;
    std::optional<HistoryPoint> latest(const std::string& slot) const;
    // Over the full-resolution points newer than since_ms, current generation only; nullopt
    // with fewer than kMinTrendPoints.
    std::optional<Trend> trend(const std::string& slot, std::int64_t since_ms) const;

    std::size_t slots() const { return slots_.size(); }
    std::size_t points() const;
    std::size_t bytes() const;  // what the rings hold, allocated capacity included

    static constexpr std::size_t kMaxFine = 3600;
    static constexpr std::size_t kCoarse = 288;  // a day of five-minute points
    static constexpr std::size_t kMinTrendPoints = 6;
    static constexpr std::size_t kMaxGenerations = 64;

  private:
    // kB in 32 bits (4 TiB each), and the time as the number of intervals since the slot's
    // previous point: 22 bytes a point, so an hour of 1000 workers at 10 s stays under 8 MiB.
    // Times are kept to the interval, as samples are taken on it.
#pragma pack(push, 2)
    struct Fine {
        std::uint16_t gap = 0;  // intervals since the previous point (saturates)
        std::uint32_t rss = 0, pss = 0, uss = 0, swap_pss = 0, cow_lost = 0;
    };
#pragma pack(pop)
    struct Coarse {
        std::uint32_t t_s = 0;  // seconds from the epoch: the mean time of the points
        std::uint32_t generation = 0;
        std::uint32_t rss = 0, pss = 0, uss = 0, swap_pss = 0, cow_lost = 0;
    };
    template <class T>
    struct Ring {
        std::vector<T> v;  // grows to its capacity, then wraps
        std::size_t head = 0;
        void push(const T& x, std::size_t cap);
        std::size_t size() const { return v.size(); }
        const T& at(std::size_t i) const;  // 0 = oldest
    };
    struct Slot {
        Ring<Fine> fine;
        std::int64_t last_t = 0;    // the newest fine point's time
        std::int64_t oldest_t = 0;  // the oldest one's
        Ring<Coarse> coarse;
        std::vector<std::pair<std::int64_t, std::uint32_t>> generations;  // (from t_ms, gen)
        // The fine points folded into the next coarse point so far.
        std::uint64_t acc[5] = {};
        std::uint64_t acc_t = 0;
        std::uint32_t acc_n = 0, acc_gen = 0;
    };

    std::uint32_t generation_at(const Slot& s, std::int64_t t_ms) const;
    // The slot's fine points with their times, oldest first.
    template <class F>
    void each_fine(const Slot& s, F&& f) const;

    Millis every_;
    std::size_t fine_cap_ = 0;
    std::size_t fold_ = 1;  // fine points per coarse point
    std::int64_t epoch_ms_ = -1;
    std::unordered_map<std::string, Slot> slots_;
};

}  // namespace cow::mem
