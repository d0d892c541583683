// The memory sampler over a fake /proc: what is gone is skipped, never reported as zero; the
// copy-on-write baseline is the fork for forked processes, else the first sample; orphans
// show under their worker; totals add PSS, never RSS twice.
#include "daemon/memory/memory_sampler.hpp"

#include <filesystem>
#include <fstream>

#include <boost/json.hpp>
#include <gtest/gtest.h>

using namespace cow;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

struct FakeProc {
    fs::path root;
    FakeProc() {
        char tmpl[] = "/tmp/cowherd-fakeproc-XXXXXX";
        root = mkdtemp(tmpl);
        write("self/smaps_rollup", rollup(1, 1, 0));
    }
    ~FakeProc() { fs::remove_all(root); }
    void write(const std::string& rel, const std::string& text) {
        fs::create_directories((root / rel).parent_path());
        std::ofstream(root / rel) << text;
    }
    static std::string rollup(int rss_kb, int pss_kb, int private_dirty_kb) {
        return "00400000-7ffff000 ---p 00000000 00:00 0      [rollup]\n"
               "Rss:            " +
               std::to_string(rss_kb) +
               " kB\n"
               "Pss:            " +
               std::to_string(pss_kb) +
               " kB\n"
               "Shared_Clean:          0 kB\n"
               "Shared_Dirty:   " +
               std::to_string(rss_kb - private_dirty_kb) +
               " kB\n"
               "Private_Clean:         0 kB\n"
               "Private_Dirty:  " +
               std::to_string(private_dirty_kb) +
               " kB\n"
               "Swap:                  0 kB\n"
               "SwapPss:               0 kB\n";
    }
    // layout: 0 writes a stat line without the address-space fields (hidden, or an old
    // kernel); otherwise they are derived from it, so equal layouts mean fork without exec.
    void process(pid_t pid, pid_t ppid, std::uint64_t start, const std::string& comm,
                 std::uint64_t layout = 0) {
        std::string line = std::to_string(pid) + " (" + comm + ") S " + std::to_string(ppid) +
                           " 1 1 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 " + std::to_string(start) +
                           " 0 0 0";
        if (layout) {
            auto f = [&](int k) { return " " + std::to_string(layout + 0x1000 * k); };
            line += f(0) + f(1) + f(2);  // fields 26-28: code and stack
            for (int i = 29; i <= 44; ++i)
                line += " 0";
            line += f(3) + f(4) + f(5);  // fields 45-47: data and brk
            line += " 0 0 0 0 0";
        }
        write(std::to_string(pid) + "/stat", line + "\n");
    }
};

mem::MemQuery query(std::vector<mem::Target> ts) {
    mem::MemQuery q;
    q.pools = {"web"};
    q.targets = std::move(ts);
    return q;
}

TEST(MemorySampler, GoneProcessesAreSkippedAndTotalsAddPss) {
    FakeProc p;
    p.process(100, 1, 500, "master");
    p.write("100/smaps_rollup", FakeProc::rollup(1000, 400, 100));
    p.write("100/task/100/children", "101 102 ");
    p.process(101, 100, 600, "child");
    p.write("101/smaps_rollup", FakeProc::rollup(900, 300, 50));
    p.process(102, 100, 601, "vanished");  // listed, but its rollup is gone: it exited
    mem::Sampler sampler(p.root.string());
    auto q = query(
        {{"web", "web.0", 0, 100, 1, "", "master"}, {"web", "web.1", 1, 200, 1, "", "ghost"}});
    auto s = sampler.sample(q);
    ASSERT_EQ(s.workers.size(), 2u);
    ASSERT_EQ(s.workers[0].procs.size(), 2u) << "102 is skipped, not a zero row";
    EXPECT_EQ(s.workers[0].procs[1].pid, 101);
    EXPECT_TRUE(s.workers[1].procs.empty());

    auto j = mem::Sampler::to_json(q, s, "");
    auto& pool = j["pools"].as_array()[0].as_object();
    auto& t = pool["totals"].as_object();
    EXPECT_EQ(t["pss"].as_uint64(), 700u * 1024);
    EXPECT_EQ(t["rss_sum"].as_uint64(), 1900u * 1024);
    EXPECT_EQ(t["saved"].as_uint64(), 1200u * 1024);
    EXPECT_EQ(t["uss"].as_uint64(), 150u * 1024);
    auto& w1 = pool["workers"].as_array()[1].as_object();
    EXPECT_EQ(w1["status"].as_string(), "gone");
    EXPECT_TRUE(w1["self"].is_null());
}

TEST(MemorySampler, ErosionIsMeasuredFromTheFirstSampleOfEachProcess) {
    FakeProc p;
    p.process(100, 1, 500, "master");
    p.write("100/smaps_rollup", FakeProc::rollup(1000, 400, 100));
    mem::Sampler sampler(p.root.string());
    auto q = query({{"web", "web.0", 0, 100, 1, "", "master"}});
    sampler.sample(q);
    p.write("100/smaps_rollup", FakeProc::rollup(1000, 600, 400));
    auto j = mem::Sampler::to_json(q, sampler.sample(q), "");
    auto& w = j["pools"].as_array()[0].as_object()["workers"].as_array()[0].as_object();
    EXPECT_EQ(w["cow_lost"].as_object()["private_dirty_growth"].as_uint64(), 300u * 1024);
    EXPECT_EQ(w["cow_lost"].as_object()["shared_lost"].as_uint64(), 300u * 1024);

    // A new generation of the worker (same pid, reused) starts a new baseline.
    q.targets[0].generation = 2;
    auto j2 = mem::Sampler::to_json(q, sampler.sample(q), "");
    auto& w2 = j2["pools"].as_array()[0].as_object()["workers"].as_array()[0].as_object();
    EXPECT_EQ(w2["cow_lost"].as_object()["private_dirty_growth"].as_uint64(), 0u);
}

TEST(MemorySampler, SortsWorkersByTheirTree) {
    FakeProc p;
    for (pid_t pid : {100, 101, 102})
        p.process(pid, 1, 500 + pid, "w");
    p.write("100/smaps_rollup", FakeProc::rollup(100, 50, 10));
    p.write("101/smaps_rollup", FakeProc::rollup(300, 250, 10));
    p.write("102/smaps_rollup", FakeProc::rollup(200, 150, 90));
    mem::Sampler sampler(p.root.string());
    auto q = query({{"web", "web.0", 0, 100, 1, "", "w"},
                    {"web", "web.1", 1, 101, 1, "", "w"},
                    {"web", "web.2", 2, 102, 1, "", "w"}});
    auto s = sampler.sample(q);
    auto order = [&](const std::string& key) {
        auto j = mem::Sampler::to_json(q, s, key);
        std::string names;
        for (auto& w : j["pools"].as_array()[0].as_object()["workers"].as_array())
            names += std::string(w.as_object()["name"].as_string()) + " ";
        return names;
    };
    EXPECT_EQ(order(""), "web.0 web.1 web.2 ");
    EXPECT_EQ(order("pss"), "web.1 web.2 web.0 ");
    EXPECT_EQ(order("uss"), "web.2 web.0 web.1 ");
    EXPECT_EQ(order("rss"), "web.1 web.2 web.0 ");
}

json::object& worker0(json::object& j) {
    return j["pools"].as_array()[0].as_object()["workers"].as_array()[0].as_object();
}

json::object& proc_at(json::object& j, std::size_t i) {
    return worker0(j)["processes"].as_array()[i].as_object();
}

std::uint64_t growth(json::object& p) {
    return p["cow_lost"].as_object()["private_dirty_growth"].as_uint64();
}

// A preforking master seen for the first time long after its children rewrote part of what
// it loaded: each child's baseline is its fork (then it held nothing private), and the
// master's too, so all the erosion shows though nothing was sampled before.
TEST(MemorySampler, ForkedProcessesAreMeasuredFromTheFork) {
    FakeProc p;
    p.process(100, 1, 500, "master", 0x7000);
    p.write("100/smaps_rollup", FakeProc::rollup(1000, 400, 200));
    p.write("100/task/100/children", "101 102 ");
    p.process(101, 100, 600, "child", 0x7000);  // forked: the master's layout
    p.write("101/smaps_rollup", FakeProc::rollup(1000, 500, 300));
    p.process(102, 100, 601, "helper", 0x9000);  // forked, then exec'd: a layout of its own
    p.write("102/smaps_rollup", FakeProc::rollup(800, 700, 600));
    mem::Sampler sampler(p.root.string());
    auto q = query({{"web", "web.0", 0, 100, 1, "", "master"}});
    auto j = mem::Sampler::to_json(q, sampler.sample(q), "");
    EXPECT_EQ(growth(proc_at(j, 0)), 200u * 1024) << "the master, rebaselined at its fork";
    EXPECT_EQ(proc_at(j, 0)["cow_lost"].as_object()["baseline"].as_string(), "fork");
    EXPECT_EQ(growth(proc_at(j, 1)), 300u * 1024) << "the forked child: all since its fork";
    EXPECT_EQ(proc_at(j, 1)["cow_lost"].as_object()["shared_lost"].as_uint64(), 300u * 1024);
    EXPECT_EQ(proc_at(j, 1)["cow_lost"].as_object()["baseline"].as_string(), "fork");
    EXPECT_EQ(growth(proc_at(j, 2)), 0u) << "an exec'd program's memory is its own, not erosion";
    EXPECT_EQ(proc_at(j, 2)["cow_lost"].as_object()["baseline"].as_string(), "first sample");
    EXPECT_EQ(j["pools"]
                  .as_array()[0]
                  .as_object()["cow_lost"]
                  .as_object()["private_dirty_growth"]
                  .as_uint64(),
              500u * 1024);

    // Later erosion adds to it.
    p.write("101/smaps_rollup", FakeProc::rollup(1000, 550, 400));
    auto j2 = mem::Sampler::to_json(q, sampler.sample(q), "");
    EXPECT_EQ(growth(proc_at(j2, 1)), 400u * 1024);
}

// The master's first sample came when it was ready, before it forked: the table it loaded
// was private then. Once it forks, those pages are shared, and the master's erosion counts
// from there, not from a figure it can never reach again.
TEST(MemorySampler, AMasterSampledBeforeItForksIsRebaselinedAtTheFork) {
    FakeProc p;
    p.process(100, 1, 500, "master", 0x7000);
    p.write("100/smaps_rollup", FakeProc::rollup(70000, 70000, 65000));
    mem::Sampler sampler(p.root.string());
    auto q = query({{"web", "web.0", 0, 100, 1, "", "master"}});
    auto j = mem::Sampler::to_json(q, sampler.sample(q), "");
    EXPECT_EQ(proc_at(j, 0)["cow_lost"].as_object()["baseline"].as_string(), "first sample");

    p.write("100/task/100/children", "101 ");
    p.process(101, 100, 900, "child", 0x7000);
    p.write("101/smaps_rollup", FakeProc::rollup(70000, 35000, 8000));
    p.write("100/smaps_rollup", FakeProc::rollup(70000, 35000, 8000));
    auto j2 = mem::Sampler::to_json(q, sampler.sample(q), "");
    EXPECT_EQ(growth(proc_at(j2, 0)), 8000u * 1024);
    EXPECT_EQ(growth(proc_at(j2, 1)), 8000u * 1024);
}

// A child first seen between its fork and its exec gets a fork baseline; once it has
// exec'd, that baseline describes a process that is no more and a new one starts.
TEST(MemorySampler, AChildThatExecsAfterItsFirstSampleStartsAfresh) {
    FakeProc p;
    p.process(100, 1, 500, "sh", 0x7000);
    p.write("100/smaps_rollup", FakeProc::rollup(500, 400, 100));
    p.write("100/task/100/children", "101 ");
    p.process(101, 100, 600, "sh", 0x7000);
    p.write("101/smaps_rollup", FakeProc::rollup(500, 300, 50));
    mem::Sampler sampler(p.root.string());
    auto q = query({{"web", "web.0", 0, 100, 1, "", "sh"}});
    auto j = mem::Sampler::to_json(q, sampler.sample(q), "");
    EXPECT_EQ(growth(proc_at(j, 1)), 50u * 1024);

    p.process(101, 100, 600, "app", 0xa000);  // same pid and start: it exec'd
    p.write("101/smaps_rollup", FakeProc::rollup(9000, 9000, 8000));
    auto j2 = mem::Sampler::to_json(q, sampler.sample(q), "");
    EXPECT_EQ(growth(proc_at(j2, 1)), 0u);
    EXPECT_EQ(proc_at(j2, 1)["cow_lost"].as_object()["baseline"].as_string(), "first sample");
}

// Orphans come as roots of their own (the daemon adopted them): shown under their worker,
// kept out of its tree (restarting it would free none of it) but counted in the pool. One
// whose start time no longer matches was reaped, and its pid is someone else's now.
TEST(MemorySampler, OrphansShowUnderTheirWorkerAndCountInThePool) {
    FakeProc p;
    p.process(100, 1, 500, "worker");
    p.write("100/smaps_rollup", FakeProc::rollup(1000, 400, 100));
    p.process(300, 1, 900, "kept");
    p.write("300/smaps_rollup", FakeProc::rollup(2000, 1500, 1200));
    p.write("300/task/300/children", "301 ");
    p.process(301, 300, 950, "kept-child");
    p.write("301/smaps_rollup", FakeProc::rollup(600, 200, 100));
    p.process(400, 1, 1234, "stranger");  // the orphan recorded at 400 started at 1000
    p.write("400/smaps_rollup", FakeProc::rollup(5000, 5000, 5000));
    mem::Sampler sampler(p.root.string());
    mem::Target t{"web", "web.0", 0, 100, 1, "", "worker"};
    t.orphans = {{300, 900, "kept", ""}, {400, 1000, "gone", ""}};
    mem::Target gone{"web", "web.1", 1, 0, 3, "", ""};  // its worker exited; orphans remain
    gone.orphans = {{301, 950, "kept-child", ""}};
    auto q = query({t});
    auto j = mem::Sampler::to_json(q, sampler.sample(q), "");
    auto& w = worker0(j);
    auto& procs = w["processes"].as_array();
    ASSERT_EQ(procs.size(), 3u) << "the worker, the orphan and its child; not the stranger";
    EXPECT_FALSE(procs[0].as_object().contains("orphan"));
    EXPECT_TRUE(procs[1].as_object()["orphan"].as_bool());
    EXPECT_EQ(procs[1].as_object()["pid"].as_int64(), 300);
    EXPECT_EQ(procs[2].as_object()["pid"].as_int64(), 301);
    EXPECT_EQ(w["tree"].as_object()["pss"].as_uint64(), 400u * 1024);
    EXPECT_EQ(w["orphans"].as_object()["pss"].as_uint64(), 1700u * 1024);
    EXPECT_EQ(w["orphans"].as_object()["processes"].as_uint64(), 2u);
    auto& pool = j["pools"].as_array()[0].as_object();
    EXPECT_EQ(pool["totals"].as_object()["pss"].as_uint64(), 2100u * 1024);

    // A worker that is not running still shows the orphans it left.
    auto q2 = query({gone});
    auto j2 = mem::Sampler::to_json(q2, sampler.sample(q2), "");
    auto& w2 = worker0(j2);
    EXPECT_TRUE(w2["self"].is_null());
    EXPECT_EQ(w2["status"].as_string(), "not running");
    ASSERT_EQ(w2["processes"].as_array().size(), 1u);
    EXPECT_EQ(j2["pools"].as_array()[0].as_object()["totals"].as_object()["pss"].as_uint64(),
              200u * 1024);
}

TEST(MemorySampler, ParsesTheAddressSpaceLayoutOfAStatLine) {
    std::string line = "7 (a) b) c) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0 11 12 13";
    for (int i = 29; i <= 44; ++i)
        line += " 0";
    line += " 45 46 47 0 0 0 0 0";
    auto l = mem::parse_layout(line);
    ASSERT_TRUE(l);
    EXPECT_EQ(*l, (mem::Layout{11, 12, 13, 45, 46, 47}));
    EXPECT_FALSE(mem::parse_layout("7 (a) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0"));
}

}  // namespace
