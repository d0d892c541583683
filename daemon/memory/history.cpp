#include "daemon/memory/history.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace cow::mem {

namespace {

constexpr std::int64_t kHourMs = 3600 * 1000;
constexpr std::int64_t kCoarseMs = 5 * 60 * 1000;

std::uint32_t kb(std::uint64_t bytes) {
    const std::uint64_t k = (bytes + 512) / 1024;
    return k > std::numeric_limits<std::uint32_t>::max() ? std::numeric_limits<std::uint32_t>::max()
                                                         : static_cast<std::uint32_t>(k);
}

std::uint64_t from_kb(std::uint32_t kb) {
    return static_cast<std::uint64_t>(kb) * 1024;
}

}  // namespace

template <class T>
void History::Ring<T>::push(const T& x, std::size_t cap) {
    if (v.size() < cap) {
        if (v.empty()) v.reserve(cap);  // exactly: a ring never grows past its bound
        v.push_back(x);
        return;
    }
    v[head] = x;
    head = (head + 1) % v.size();
}

template <class T>
const T& History::Ring<T>::at(std::size_t i) const {
    return v[(head + i) % v.size()];
}

History::History(Millis every) {
    set_interval(every);
}

void History::set_interval(Millis every) {
    if (every.count() <= 0) every = Millis{1};
    if (every == every_ && fine_cap_ > 0) return;
    every_ = every;
    fine_cap_ = static_cast<std::size_t>(
        std::clamp<std::int64_t>(kHourMs / every.count(), kMinTrendPoints, kMaxFine));
    fold_ = static_cast<std::size_t>(std::max<std::int64_t>(1, kCoarseMs / every.count()));
    slots_.clear();  // points of another interval would not line up with the new ones
    epoch_ms_ = -1;
}

void History::add(const std::string& slot, std::uint32_t generation, std::int64_t t_ms,
                  const Figures& f) {
    if (epoch_ms_ < 0) epoch_ms_ = t_ms;
    Slot& s = slots_[slot];
    Fine p;
    if (s.fine.size() > 0) {
        const std::int64_t gap = (t_ms - s.last_t + every_.count() / 2) / every_.count();
        p.gap = static_cast<std::uint16_t>(std::clamp<std::int64_t>(gap, 1, 0xffff));
        t_ms = s.last_t + p.gap * every_.count();  // kept to the interval, as stored
    }
    if (s.fine.size() == 0) s.oldest_t = t_ms;
    s.last_t = t_ms;
    p.rss = kb(f.rss);
    p.pss = kb(f.pss);
    p.uss = kb(f.uss);
    p.swap_pss = kb(f.swap_pss);
    p.cow_lost = kb(f.cow_lost);
    if (s.generations.empty() || s.generations.back().second != generation) {
        s.generations.emplace_back(t_ms, generation);
        if (s.generations.size() > kMaxGenerations) s.generations.erase(s.generations.begin());
    }
    // The point the fine ring is about to overwrite goes into the coarse average first.
    if (s.fine.size() == fine_cap_) {
        const Fine& old = s.fine.at(0);
        const std::int64_t t_old = s.oldest_t;
        const std::uint32_t gen_old = generation_at(s, t_old);
        s.acc[0] += old.rss;
        s.acc[1] += old.pss;
        s.acc[2] += old.uss;
        s.acc[3] += old.swap_pss;
        s.acc[4] += old.cow_lost;
        // Its successor becomes the oldest, its gap counted from the one that goes.
        s.oldest_t = t_old + static_cast<std::int64_t>(s.fine.at(1).gap) * every_.count();
        s.acc_t += static_cast<std::uint64_t>(std::max<std::int64_t>(0, t_old - epoch_ms_));
        s.acc_gen = gen_old;
        if (++s.acc_n == fold_) {
            Coarse c;
            c.t_s = static_cast<std::uint32_t>(s.acc_t / s.acc_n / 1000);
            c.generation = s.acc_gen;
            c.rss = static_cast<std::uint32_t>(s.acc[0] / s.acc_n);
            c.pss = static_cast<std::uint32_t>(s.acc[1] / s.acc_n);
            c.uss = static_cast<std::uint32_t>(s.acc[2] / s.acc_n);
            c.swap_pss = static_cast<std::uint32_t>(s.acc[3] / s.acc_n);
            c.cow_lost = static_cast<std::uint32_t>(s.acc[4] / s.acc_n);
            s.coarse.push(c, kCoarse);
            std::fill(std::begin(s.acc), std::end(s.acc), 0);
            s.acc_t = 0;
            s.acc_n = 0;
        }
    }
    s.fine.push(p, fine_cap_);
}

template <class F>
void History::each_fine(const Slot& s, F&& f) const {
    std::int64_t t = s.oldest_t;
    for (std::size_t i = 0; i < s.fine.size(); ++i) {
        if (i > 0) t += static_cast<std::int64_t>(s.fine.at(i).gap) * every_.count();
        f(t, s.fine.at(i));
    }
}

std::uint32_t History::generation_at(const Slot& s, std::int64_t t_ms) const {
    std::uint32_t g = s.generations.empty() ? 0 : s.generations.front().second;
    for (const auto& [from, gen] : s.generations) {
        if (from > t_ms) break;
        g = gen;
    }
    return g;
}

void History::retain(const std::function<bool(const std::string&)>& keep) {
    std::erase_if(slots_, [&](const auto& kv) { return !keep(kv.first); });
}

std::vector<HistoryPoint> History::series(const std::string& slot, std::int64_t since_ms) const {
    std::vector<HistoryPoint> out;
    auto it = slots_.find(slot);
    if (it == slots_.end()) return out;
    const Slot& s = it->second;
    std::int64_t oldest_fine = std::numeric_limits<std::int64_t>::max();
    each_fine(s, [&](std::int64_t t, const Fine&) { oldest_fine = std::min(oldest_fine, t); });
    for (std::size_t i = 0; i < s.coarse.size(); ++i) {
        const Coarse& c = s.coarse.at(i);
        const std::int64_t t = epoch_ms_ + static_cast<std::int64_t>(c.t_s) * 1000;
        if (t < since_ms || t >= oldest_fine) continue;
        out.push_back(HistoryPoint{t, c.generation,
                                   Figures{from_kb(c.rss), from_kb(c.pss), from_kb(c.uss),
                                           from_kb(c.swap_pss), from_kb(c.cow_lost)},
                                   true});
    }
    each_fine(s, [&](std::int64_t t, const Fine& f) {
        if (t < since_ms) return;
        out.push_back(HistoryPoint{t, generation_at(s, t),
                                   Figures{from_kb(f.rss), from_kb(f.pss), from_kb(f.uss),
                                           from_kb(f.swap_pss), from_kb(f.cow_lost)},
                                   false});
    });
    return out;
}

std::optional<HistoryPoint> History::latest(const std::string& slot) const {
    auto it = slots_.find(slot);
    if (it == slots_.end() || it->second.fine.size() == 0) return std::nullopt;
    const Slot& s = it->second;
    const Fine& f = s.fine.at(s.fine.size() - 1);
    return HistoryPoint{s.last_t, s.generations.empty() ? 0 : s.generations.back().second,
                        Figures{from_kb(f.rss), from_kb(f.pss), from_kb(f.uss), from_kb(f.swap_pss),
                                from_kb(f.cow_lost)},
                        false};
}

std::vector<std::uint64_t> History::recent_uss(const std::string& slot, std::size_t n) const {
    std::vector<std::uint64_t> out;
    auto it = slots_.find(slot);
    if (it == slots_.end() || n == 0) return out;
    const Slot& s = it->second;
    const std::int64_t gen_from = s.generations.empty() ? 0 : s.generations.back().first;
    // From the newest back, as far as the current generation goes: a refresh of `top` asks
    // for a screen's width of points, not the hour.
    std::int64_t t = s.last_t;
    for (std::size_t i = s.fine.size(); i-- > 0 && out.size() < n;) {
        if (t < gen_from) break;
        out.push_back(from_kb(s.fine.at(i).uss));
        t -= static_cast<std::int64_t>(s.fine.at(i).gap) * every_.count();
    }
    std::reverse(out.begin(), out.end());
    return out;
}

std::optional<Trend> History::trend(const std::string& slot, std::int64_t since_ms) const {
    auto it = slots_.find(slot);
    if (it == slots_.end()) return std::nullopt;
    const Slot& s = it->second;
    const std::int64_t gen_from = s.generations.empty() ? 0 : s.generations.back().first;
    const std::int64_t from = std::max(since_ms, gen_from);
    // Sums relative to the first point keep the doubles well conditioned.
    double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
    std::int64_t t0 = -1, t_last = 0;
    Trend tr;
    each_fine(s, [&](std::int64_t t, const Fine& f) {
        if (t < from) return;
        if (t0 < 0) t0 = t;
        const double x = static_cast<double>(t - t0) / 1000.0;
        const double y = static_cast<double>(from_kb(f.uss));
        n += 1;
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
        syy += y * y;
        t_last = t;
        tr.last_private = from_kb(f.uss) + from_kb(f.swap_pss);
    });
    if (n < static_cast<double>(kMinTrendPoints)) return std::nullopt;
    const double vx = n * sxx - sx * sx, vy = n * syy - sy * sy, cxy = n * sxy - sx * sy;
    if (vx <= 0) return std::nullopt;
    tr.uss_per_s = cxy / vx;
    tr.r2 = vy > 0 ? (cxy * cxy) / (vx * vy) : 1.0;  // a flat line fits perfectly
    tr.points = static_cast<std::size_t>(n);
    tr.span_ms = t_last - t0;
    return tr;
}

std::size_t History::points() const {
    std::size_t n = 0;
    for (const auto& [name, s] : slots_)
        n += s.fine.size() + s.coarse.size();
    return n;
}

std::size_t History::bytes() const {
    std::size_t n = 0;
    for (const auto& [name, s] : slots_)
        n += sizeof(Slot) + name.capacity() + s.fine.v.capacity() * sizeof(Fine) +
             s.coarse.v.capacity() * sizeof(Coarse) +
             s.generations.capacity() * sizeof(s.generations[0]) + 48;  // map node
    return n;
}

}  // namespace cow::mem
