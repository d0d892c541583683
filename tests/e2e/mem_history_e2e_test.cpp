// Memory over time: the daemon samples every running worker on daemon.memory.sample_every,
// `cowctl mem --history` shows the series and the trend, and a worker that grows at a known
// rate while its siblings stay flat gets that slope and the leak flag.
#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

class MemHistory : public DaemonFixture {
  protected:
    // The workers of `pool` in a `mem --history --json` reply.
    std::vector<json::object> hist_workers(const std::string& pool,
                                           std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"mem", pool, "--history"};
        args.insert(args.end(), extra.begin(), extra.end());
        auto v = ctl_json(args);
        std::vector<json::object> out;
        if (!v.is_object()) return out;
        for (auto& p : v.as_object()["pools"].as_array())
            for (auto& w : p.as_object()["workers"].as_array())
                out.push_back(w.as_object());
        return out;
    }
    static double num(const json::value& v) { return v.to_number<double>(); }
};

// 4 MiB a second for grow.0; grow.1 and grow.2 hold their base and idle.
TEST_F(MemHistory, AWorkerGrowingAtAKnownRateGetsItsSlopeAndTheLeakFlag) {
    start("  grow:\n    command: [\"" + bin("leaker") +
              "\", \"4096\", --only, \"0\", --base, \"8\"]\n    workers: 3\n"
              "    start_timeout: 100ms\n    memory: {max_private: 1GiB, check_every: 1h}\n",
          "  memory:\n    sample_every: 20ms\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("grow", "running") == 3; }));
    // Three seconds of samples (150 points) for every worker.
    ASSERT_TRUE(WaitFor(
        [&] {
            auto ws = hist_workers("grow");
            if (ws.size() != 3) return false;
            for (auto& w : ws) {
                const auto& t = w["trend"];
                if (!t.is_object() || num(t.as_object().at("window_ms")) < 3000) return false;
            }
            return true;
        },
        std::chrono::seconds(30)));
    auto ws = hist_workers("grow");
    ASSERT_EQ(ws.size(), 3u);
    const auto& t0 = ws[0]["trend"].as_object();
    EXPECT_NEAR(num(t0.at("uss_per_hour")) / 3600.0, 4 * kMiB, 0.4 * kMiB) << json::serialize(t0);
    EXPECT_TRUE(t0.at("leak").as_bool()) << json::serialize(t0);
    ASSERT_TRUE(t0.contains("recycle_in_s"));
    // About (1 GiB - what it holds) / 4 MiB/s.
    EXPECT_GT(num(t0.at("recycle_in_s")), 100.0);
    EXPECT_LT(num(t0.at("recycle_in_s")), 260.0);
    for (int i : {1, 2}) {
        const auto& t = ws[i]["trend"].as_object();
        EXPECT_FALSE(t.at("leak").as_bool()) << json::serialize(t);
        EXPECT_LT(std::abs(num(t.at("uss_per_hour"))) / 3600.0, 0.1 * kMiB) << json::serialize(t);
    }
    // The series is in time order, one generation, with USS that grew by about the rate.
    const auto& pts = ws[0]["points"].as_array();
    ASSERT_GT(pts.size(), 100u);
    for (std::size_t i = 1; i < pts.size(); ++i)
        ASSERT_LE(num(pts[i - 1].as_object().at("at_ms")), num(pts[i].as_object().at("at_ms")));
    // --since keeps only the newest points.
    auto recent = hist_workers("grow.0", {"--since", "1s"});
    ASSERT_EQ(recent.size(), 3u);  // POOL.N shows its pool, like mem
    EXPECT_LT(recent[0]["points"].as_array().size(), pts.size());
    // The snapshot carries the same judgement, and the table shows it.
    auto mem = ctl_json({"mem", "grow"});
    bool found = false;
    for (auto& w : mem.as_object()["pools"].as_array()[0].as_object()["workers"].as_array())
        if (w.as_object()["name"] == "grow.0") {
            found = true;
            EXPECT_TRUE(w.as_object()["trend"].as_object().at("leak").as_bool());
        }
    EXPECT_TRUE(found);
    auto table = ctl({"mem", "grow"});
    EXPECT_NE(table.out.find("leak?"), std::string::npos) << table.out;
    auto chart = ctl({"mem", "--history", "grow"});
    EXPECT_EQ(chart.code, 0) << chart.err;
    EXPECT_NE(chart.out.find("grow.0"), std::string::npos) << chart.out;
    EXPECT_NE(chart.out.find("cow_lost"), std::string::npos) << chart.out;
    EXPECT_NE(chart.out.find("leak?"), std::string::npos) << chart.out;
}

// A restart starts the slot's trend afresh, and the series marks the new generation.
TEST_F(MemHistory, ARestartStartsANewGenerationInTheSeries) {
    start("  grow:\n    command: [\"" + bin("leaker") +
              "\", \"2048\"]\n    workers: 1\n    start_timeout: 100ms\n",
          "  memory:\n    sample_every: 20ms\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("grow", "running") == 1; }));
    ASSERT_TRUE(WaitFor([&] {
        auto ws = hist_workers("grow");
        return ws.size() == 1 && ws[0]["points"].as_array().size() >= 20;
    }));
    const double gen = num(workers("grow")[0]["generation"]);
    ASSERT_EQ(ctl({"restart", "grow.0"}).code, 0);
    ASSERT_TRUE(WaitFor([&] {
        auto ws = hist_workers("grow");
        if (ws.size() != 1) return false;
        const auto& pts = ws[0]["points"].as_array();
        return !pts.empty() && num(pts.back().as_object().at("generation")) > gen;
    }));
    auto ws = hist_workers("grow");
    const auto& pts = ws[0]["points"].as_array();
    EXPECT_EQ(num(pts.front().as_object().at("generation")), gen) << "the old generation is kept";
}

// A long run at the test-only interval of 10 ms: the slot's ring fills to its bound (3600
// points) and stays there, and what the history holds stops growing.
TEST_F(MemHistory, TheRingStaysWithinItsBoundOverALongRun) {
    start("  idle:\n    command: [\"" + bin("leaker") + "\", \"0\"]\n    start_timeout: 100ms\n",
          "  memory:\n    sample_every: 10ms\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("idle", "running") == 1; }));
    auto size = [&] { return ctl_json({"mem", "idle", "--history"}).as_object()["history"]; };
    ASSERT_TRUE(WaitFor([&] { return num(size().as_object()["points"]) >= 3600; },
                        std::chrono::seconds(180)));
    const auto full = size().as_object();
    EXPECT_EQ(num(full.at("points")), 3600);
    // Another second of samples (about a hundred) later: still the bound, and not a byte more.
    const double samples = num(full.at("points"));
    auto pts = [&] { return hist_workers("idle", {"--points", "4096"})[0]["points"].as_array(); };
    const auto newest = num(pts().back().as_object().at("at_ms"));
    ASSERT_TRUE(WaitFor([&] { return num(pts().back().as_object().at("at_ms")) > newest + 1000; },
                        std::chrono::seconds(30)));
    const auto later = size().as_object();
    EXPECT_EQ(num(later.at("points")), samples);
    EXPECT_EQ(num(later.at("bytes")), num(full.at("bytes")));
    EXPECT_EQ(pts().size(), 3600u);
    // By default a reply carries at most 360 points a worker, the older ones averaged.
    EXPECT_EQ(hist_workers("idle")[0]["points"].as_array().size(), 360u);
}

// Off when 0: `mem --history` says so, and the snapshot has no trend.
TEST_F(MemHistory, ZeroTurnsItOff) {
    start("  idle:\n    command: [\"" + bin("leaker") + "\", \"0\"]\n    start_timeout: 100ms\n",
          "  memory:\n    sample_every: 0\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("idle", "running") == 1; }));
    auto r = ctl({"mem", "--history", "idle"});
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find("memory history is off"), std::string::npos) << r.err;
}

}  // namespace
