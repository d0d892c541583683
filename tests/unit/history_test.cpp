// The memory history's rings and trends, with made-up samples at made-up times.
#include "daemon/memory/history.hpp"

#include <gtest/gtest.h>

#include "daemon/memory/history_sampler.hpp"

using namespace cow;
using namespace cow::mem;

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

Figures uss(std::uint64_t bytes) {
    Figures f;
    f.uss = bytes;
    f.pss = bytes + kMiB;
    f.rss = bytes + 4 * kMiB;
    return f;
}

}  // namespace

TEST(History, KeepsTheSeriesInOrderWithItsTimesAndGenerations) {
    History h(Millis{1000});
    for (int i = 0; i < 10; ++i)
        h.add("web.0", i < 5 ? 1 : 2, 50'000 + i * 1000, uss(static_cast<std::uint64_t>(i) * kMiB));
    auto s = h.series("web.0", 0);
    ASSERT_EQ(s.size(), 10u);
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(s[i].t_ms, 50'000 + i * 1000);
        EXPECT_EQ(s[i].f.uss, static_cast<std::uint64_t>(i) * kMiB);
        EXPECT_EQ(s[i].generation, i < 5 ? 1u : 2u);
    }
    EXPECT_EQ(h.series("web.0", 55'000).size(), 5u);
    EXPECT_TRUE(h.series("web.1", 0).empty());
    // A gap (the worker was down) keeps its length.
    h.add("web.0", 3, 50'000 + 30'000, uss(0));
    EXPECT_EQ(h.series("web.0", 0).back().t_ms, 80'000);
}

TEST(History, StaysWithinItsBoundAndFoldsOldPointsIntoCoarseOnes) {
    // At 10 ms, the full-resolution ring holds its maximum, and every 30,000 points fold into
    // one five-minute point: run long enough for both rings to fill.
    History h(Millis{10});
    const std::size_t n = History::kMaxFine + 3 * 30'000;
    for (std::size_t i = 0; i < n; ++i)
        h.add("web.0", 1, static_cast<std::int64_t>(i) * 10, uss(kMiB));
    const auto s = h.series("web.0", 0);
    std::size_t fine = 0, coarse = 0;
    for (const auto& p : s)
        (p.coarse ? coarse : fine)++;
    EXPECT_EQ(fine, History::kMaxFine);
    EXPECT_EQ(coarse, 3u);
    EXPECT_EQ(h.points(), History::kMaxFine + 3);
    for (std::size_t i = 1; i < s.size(); ++i)
        EXPECT_LT(s[i - 1].t_ms, s[i].t_ms) << i;
    EXPECT_EQ(s.back().t_ms, static_cast<std::int64_t>(n - 1) * 10);
    // The bound holds in bytes too: the fine ring never grows past its capacity.
    EXPECT_LT(h.bytes(), History::kMaxFine * 24 + History::kCoarse * 32 + 1024);
}

TEST(History, AnHourOfAThousandWorkersAtTenSecondsFitsInEightMiB) {
    History h(Millis{10'000});
    for (int t = 0; t < 360; ++t)
        for (int w = 0; w < 1000; ++w)
            h.add("pool.worker-" + std::to_string(w), 1, t * 10'000LL, uss(kMiB * 100));
    EXPECT_EQ(h.points(), 360'000u);
    EXPECT_LE(h.bytes(), 8u * kMiB) << h.bytes();
}

TEST(History, TheTrendIsTheSlopeOfTheCurrentGeneration) {
    History h(Millis{100});
    // Generation 1 grew fast; generation 2 grows 2 MiB a second, steadily.
    for (int i = 0; i < 20; ++i)
        h.add("web.0", 1, i * 100, uss(static_cast<std::uint64_t>(i) * 50 * kMiB));
    for (int i = 0; i < 50; ++i)
        h.add("web.0", 2, 2000 + i * 100,
              uss(10 * kMiB + static_cast<std::uint64_t>(i) * kMiB / 5));
    auto t = h.trend("web.0", 0);
    ASSERT_TRUE(t);
    EXPECT_NEAR(t->uss_per_s, 2.0 * kMiB, 0.01 * kMiB);
    EXPECT_GT(t->r2, 0.99);
    EXPECT_EQ(t->points, 50u);
    // Too few points: no trend yet.
    History few(Millis{100});
    for (int i = 0; i < static_cast<int>(History::kMinTrendPoints) - 1; ++i)
        few.add("web.0", 1, i * 100, uss(kMiB));
    EXPECT_FALSE(few.trend("web.0", 0));
}

TEST(History, ALeakIsSteadyGrowthItsSiblingsDoNotShare) {
    History h(Millis{1000});
    for (int i = 0; i < 60; ++i) {
        const auto t = i * 1000LL;
        h.add("web.0", 1, t, uss(100 * kMiB + static_cast<std::uint64_t>(i) * kMiB));  // 1 MiB/s
        h.add("web.1", 1, t, uss(100 * kMiB + static_cast<std::uint64_t>(i % 3) * 4096));
        h.add("web.2", 1, t, uss(90 * kMiB));
    }
    auto a = assess(h, {"web.0", "web.1", "web.2"}, 0, 400 * kMiB);
    ASSERT_TRUE(a[0].trend && a[1].trend && a[2].trend);
    EXPECT_TRUE(a[0].leak);
    EXPECT_FALSE(a[1].leak);
    EXPECT_FALSE(a[2].leak);
    // 400 MiB - 159 MiB at 1 MiB/s.
    ASSERT_TRUE(a[0].recycle_in_s);
    EXPECT_NEAR(*a[0].recycle_in_s, 241.0, 1.0);
    EXPECT_FALSE(a[2].recycle_in_s);
    // When every sibling grows alike (copy-on-write erosion after a deploy), none is a leak.
    History all(Millis{1000});
    for (int i = 0; i < 60; ++i)
        for (const char* w : {"web.0", "web.1", "web.2"})
            all.add(w, 1, i * 1000LL, uss(100 * kMiB + static_cast<std::uint64_t>(i) * kMiB));
    for (const auto& x : assess(all, {"web.0", "web.1", "web.2"}, 0, std::nullopt))
        EXPECT_FALSE(x.leak);
}

TEST(History, RetainDropsTheSlotsNoLongerWanted) {
    History h(Millis{1000});
    h.add("web.0", 1, 0, uss(kMiB));
    h.add("web.1", 1, 0, uss(kMiB));
    h.retain([](const std::string& s) { return s == "web.0"; });
    EXPECT_EQ(h.slots(), 1u);
    EXPECT_TRUE(h.latest("web.0"));
    EXPECT_FALSE(h.latest("web.1"));
}
