// The memory sampler over a fake /proc: what is gone is skipped, never reported as zero; the
// first sample is the baseline; totals add PSS, never RSS twice.
#include "daemon/memory_sampler.hpp"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

using namespace cow;
namespace fs = std::filesystem;

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
    void process(pid_t pid, pid_t ppid, std::uint64_t start, const std::string& comm) {
        write(std::to_string(pid) + "/stat", std::to_string(pid) + " (" + comm + ") S " +
                                                 std::to_string(ppid) +
                                                 " 1 1 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 " +
                                                 std::to_string(start) + " 0 0 0\n");
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

}  // namespace
