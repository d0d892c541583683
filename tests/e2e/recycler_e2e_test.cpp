// The memory recycler across reloads (issue 11, defect 3): pools are known by name, never by
// their place in the pool list, and a reload that adds, changes or removes a `memory` section
// takes effect. A worker of memhog holds 32 MiB of private memory, over a 16 MiB limit: it is
// recycled at every check, so a growing `recycles` count shows the checks running.
#include "tests/e2e/harness.hpp"

using namespace cow::test;

namespace {

class Recycler : public DaemonFixture {
  protected:
    std::string hog() const { return "[\"" + bin("memhog") + "\", \"32\", \"0\", \"0\"]"; }

    // A pool of one worker; `memory` is the YAML of its memory section, or "".
    std::string pool(const std::string& name, const std::string& command,
                     const std::string& memory) const {
        std::string y = "  " + name + ":\n    command: " + command + "\n    start_timeout: 100ms\n";
        if (!memory.empty()) y += "    memory: " + memory + "\n";
        return y;
    }

    std::int64_t recycles(const std::string& pool) {
        auto ws = workers(pool);
        return ws.empty() ? -1 : as_int(ws[0]["recycles"]);
    }

    bool daemon_alive() { return !wait_exit(std::chrono::milliseconds(0)); }

    bool pool_listed(const std::string& name) {
        auto v = ctl_json({"status"});
        for (auto& p : v.as_object()["pools"].as_array())
            if (p.as_object()["name"].as_string() == name) return true;
        return false;
    }

    void reload() {
        auto r = ctl({"reload"});
        ASSERT_EQ(r.code, 0) << r.out << r.err;
    }
};

constexpr const char* kFast = "{max_private: 16MiB, check_every: 100ms}";

// The repro: pools a and b both recycle; a is removed from the file. The daemon used
// to index its timers by position, so b's timer then read past the end of the pool list.
TEST_F(Recycler, RemovingAPoolLeavesTheOthersRecycledAndTheDaemonAlive) {
    start(pool("a", "[sleep, \"100000\"]", "{max_private: 100MiB, check_every: 100ms}") +
          pool("b", hog(), kFast));
    ASSERT_TRUE(WaitFor([&] { return recycles("b") >= 1; }, std::chrono::seconds(20)));
    write_config(pool("b", hog(), kFast));
    reload();
    ASSERT_TRUE(
        WaitFor([&] { return !daemon_alive() || !pool_listed("a"); }, std::chrono::seconds(20)));
    ASSERT_TRUE(daemon_alive()) << "the daemon died after the reload";
    const auto before = recycles("b");
    EXPECT_TRUE(WaitFor([&] { return !daemon_alive() || recycles("b") >= before + 2; },
                        std::chrono::seconds(20)));
    ASSERT_TRUE(daemon_alive()) << "the daemon died after the reload";
    EXPECT_GE(recycles("b"), before + 2) << "b is no longer recycled";
}

// Reordering moves every pool's position: b's checks must stay b's, and a, which has no
// memory section, must not inherit them.
TEST_F(Recycler, ReorderingPoolsKeepsEachPoolsOwnChecks) {
    start(pool("a", "[sleep, \"100000\"]", "") + pool("b", hog(), kFast));
    ASSERT_TRUE(WaitFor([&] { return recycles("b") >= 1; }, std::chrono::seconds(20)));
    write_config(pool("b", hog(), kFast) + pool("a", "[sleep, \"100000\"]", ""));
    reload();
    const auto before = recycles("b");
    EXPECT_TRUE(WaitFor([&] { return !daemon_alive() || recycles("b") >= before + 2; },
                        std::chrono::seconds(20)));
    ASSERT_TRUE(daemon_alive());
    EXPECT_EQ(recycles("a"), 0) << "a has no memory section, yet it was recycled";
}

// A memory section that a reload adds starts the checks; one whose check_every a reload
// shortens is checked at the new pace (the old timer was an hour away).
TEST_F(Recycler, AReloadThatAddsOrChangesMemoryStartsRecycling) {
    start(pool("c", hog(), "") + pool("d", hog(), "{max_private: 16MiB, check_every: 1h}"));
    ASSERT_TRUE(WaitFor([&] { return count_state("", "running") == 2; }));
    write_config(pool("c", hog(), kFast) + pool("d", hog(), kFast));
    reload();
    EXPECT_TRUE(
        WaitFor([&] { return recycles("c") >= 1 && recycles("d") >= 1; }, std::chrono::seconds(20)))
        << "c " << recycles("c") << ", d " << recycles("d");
    EXPECT_TRUE(daemon_alive());
}

// A memory section that a reload removes stops the checks: while the pool that keeps its
// section is recycled twice (two of its 100 ms checks), the other, checked as often before,
// is not recycled again.
TEST_F(Recycler, AReloadThatRemovesMemoryStopsRecycling) {
    start(pool("e", hog(), kFast) + pool("f", hog(), kFast));
    ASSERT_TRUE(WaitFor([&] { return recycles("e") >= 1 && recycles("f") >= 1; },
                        std::chrono::seconds(20)));
    write_config(pool("e", hog(), "") + pool("f", hog(), kFast));
    reload();
    // The reply comes once the checks are reconfigured; e restarts onto its new config, and
    // from then on nothing may recycle it.
    ASSERT_TRUE(WaitFor([&] { return count_state("e", "running") == 1; }));
    const auto e = recycles("e");
    const auto f = recycles("f");
    ASSERT_TRUE(WaitFor([&] { return recycles("f") >= f + 2; }, std::chrono::seconds(20)));
    EXPECT_EQ(recycles("e"), e);
}

}  // namespace
