// `cowctl mem` against theory: copy-on-write after fork, fork-exec'd copies, shared anonymous
// memory, unreadable processes, erosion since the first sample, and recycling.
#include <algorithm>
#include <sstream>

#include "core/proc/reader.hpp"
#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

class Mem : public DaemonFixture {
  protected:
    std::string ready() const { return (dir / "ready").string(); }

    // Waits until the ready file has `lines` lines (the helper's processes have done their part).
    void wait_ready(std::size_t lines) {
        ASSERT_TRUE(WaitFor(
            [&] {
                std::string s = slurp(ready());
                return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')) == lines;
            },
            std::chrono::seconds(30)));
    }

    json::object pool_of(const json::value& v, const std::string& name) {
        for (auto& p : v.as_object().at("pools").as_array())
            if (p.as_object().at("name").as_string() == name) return p.as_object();
        ADD_FAILURE() << "no pool " << name;
        return {};
    }

    // Direct read of one pid's smaps_rollup field, in bytes.
    static double rollup(pid_t pid, const std::string& field) {
        std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/smaps_rollup"));
        std::string line;
        while (std::getline(in, line))
            if (line.rfind(field + ":", 0) == 0)
                return std::stod(line.substr(field.size() + 1)) * 1024;
        return -1;
    }

    static double num(const json::value& v) { return v.to_number<double>(); }

    ::testing::AssertionResult AgreesWithKernel(const std::vector<pid_t>& pids);

    // What a memhog process holds besides its regions, as the kernel's smaps counts it
    // (bytes): its binary, libraries, heap and stack. Their PSS and sharing depend on what
    // else runs on the machine (how many processes map libc), so the theory is about the
    // regions and the rest is read, never assumed. memhog's regions are the anonymous
    // mappings it marked MADV_NOHUGEPAGE ("nh"), of the sizes it was asked for.
    struct Rest {
        double pss = 0, rss = 0, priv = 0, shared = 0;
    };
    static Rest rest_of(pid_t pid, std::vector<double> region_sizes) {
        cow::proc::ProcReader reader;
        auto maps = reader.read_smaps(pid);
        EXPECT_TRUE(maps.ok()) << "smaps of " << pid;
        Rest r;
        for (const auto& m : maps.value) {
            std::istringstream flags(m.vmflags);
            bool nh = false;
            for (std::string f; flags >> f;)
                nh |= f == "nh";
            const auto size = static_cast<double>(m.end - m.start);
            auto it = std::find(region_sizes.begin(), region_sizes.end(), size);
            if (nh && it != region_sizes.end()) {
                region_sizes.erase(it);
                continue;
            }
            const auto& c = m.counters;
            r.pss += static_cast<double>(c.pss);
            r.rss += static_cast<double>(c.rss);
            r.priv += static_cast<double>(c.private_clean + c.private_dirty);
            r.shared += static_cast<double>(c.shared_clean + c.shared_dirty);
        }
        EXPECT_TRUE(region_sizes.empty()) << "pid " << pid << ": a region is not in its smaps";
        return r;
    }
};

// Within 2 % + 1 MiB of the theory, as the issue demands.
::testing::AssertionResult Near(double got, double want) {
    double tol = 0.02 * want + kMiB;
    if (std::abs(got - want) <= tol) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "got " << got / kMiB << " MiB, want " << want / kMiB << " MiB +- " << tol / kMiB;
}

// lo <= got <= hi, each bound with Near's tolerance.
::testing::AssertionResult Between(double got, double lo, double hi) {
    if (got >= lo - (0.02 * lo + kMiB) && got <= hi + 0.02 * hi + kMiB)
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "got " << got / kMiB << " MiB, want " << lo / kMiB << " to " << hi / kMiB << " MiB";
}

// Each of pids as pool hog's mem reports it: PSS and RSS within 1 % (+ 2 pages) of the
// kernel's, read just before and just after the daemon's. A file page's PSS moves whenever any
// process on the machine that maps the same library starts or exits, so the daemon's figure
// may lie anywhere between the two reads; a few tries on a busy machine.
::testing::AssertionResult Mem::AgreesWithKernel(const std::vector<pid_t>& pids) {
    auto direct = [&] {
        std::vector<std::pair<double, double>> r;
        for (pid_t pid : pids)
            r.emplace_back(rollup(pid, "Pss"), rollup(pid, "Rss"));
        return r;
    };
    auto within = [](double got, double a, double b) {
        const double lo = std::min(a, b), hi = std::max(a, b);
        return got >= lo - (0.01 * lo + 8192) && got <= hi + 0.01 * hi + 8192;
    };
    std::string last;
    for (int attempt = 0; attempt < 10; ++attempt) {
        auto before = direct();
        auto v = ctl_json({"mem", "hog"});
        auto after = direct();
        auto pool = pool_of(v, "hog");
        auto& procs = pool["workers"].as_array()[0].as_object()["processes"].as_array();
        std::ostringstream why;
        for (auto& pv : procs) {
            auto& p = pv.as_object();
            auto i = std::find(pids.begin(), pids.end(), as_int(p["pid"])) - pids.begin();
            if (i == static_cast<std::ptrdiff_t>(pids.size()))
                return ::testing::AssertionFailure() << "pid " << p["pid"] << " is new";
            const auto k = static_cast<std::size_t>(i);
            if (!within(num(p["pss"]), before[k].first, after[k].first) ||
                !within(num(p["rss"]), before[k].second, after[k].second))
                why << "pid " << pids[k] << ": pss " << num(p["pss"]) << " rss " << num(p["rss"])
                    << " against the kernel's " << before[k].first << ".." << after[k].first
                    << " and " << before[k].second << ".." << after[k].second << "; ";
        }
        if (procs.size() != pids.size()) why << procs.size() << " processes, not " << pids.size();
        if (why.str().empty()) return ::testing::AssertionSuccess();
        last = why.str();
    }
    return ::testing::AssertionFailure() << last;
}

TEST_F(Mem, ForkedChildrenMatchCopyOnWriteTheory) {
    const double A = 64 * kMiB, W = 8 * kMiB;
    const int K = 3;
    start("  hog:\n    command: [\"" + bin("memhog") + "\", \"64\", \"3\", \"8\", --ready, \"" +
          ready() + "\"]\n    start_timeout: 100ms\n");
    wait_ready(K + 1);
    auto v = ctl_json({"mem", "hog"});
    auto pool = pool_of(v, "hog");
    auto& worker = pool["workers"].as_array()[0].as_object();
    auto& procs = worker["processes"].as_array();
    ASSERT_EQ(procs.size(), 4u);
    double sum_pss = 0, rest_pss = 0;
    for (std::size_t i = 0; i < procs.size(); ++i) {
        auto& p = procs[i].as_object();
        ASSERT_EQ(p["status"].as_string(), "ok");
        sum_pss += num(p["pss"]);
        rest_pss += rest_of(static_cast<pid_t>(as_int(p["pid"])), {A}).pss;
        if (i == 0) continue;  // the parent: its table is shared with all three children
        EXPECT_TRUE(Near(num(p["private_dirty"]), W)) << "child private dirty";
        EXPECT_TRUE(Near(num(p["shared_dirty"]), A - W)) << "child shared dirty";
    }
    // A + K*W, plus what the processes hold besides the table (libc, stacks, their data).
    EXPECT_GE(sum_pss, A + K * W);
    EXPECT_TRUE(Near(sum_pss - rest_pss, A + K * W)) << "the table's PSS";
    EXPECT_EQ(num(pool["totals"].as_object()["pss"]), sum_pss);
    EXPECT_EQ(num(worker["tree"].as_object()["pss"]), sum_pss);

    // And against the kernel read directly: within 1 %. A file page's PSS moves whenever any
    // process on the machine that maps the same library starts or exits, so the daemon's read
    // is bracketed by two direct ones and only a bracket the machine held still through counts.
    std::vector<pid_t> pids;
    for (auto& pv : procs)
        pids.push_back(static_cast<pid_t>(as_int(pv.as_object()["pid"])));
    EXPECT_TRUE(AgreesWithKernel(pids)) << "mem against smaps_rollup";
    auto human = ctl({"mem", "hog"});
    EXPECT_NE(human.out.find("footprint"), std::string::npos);
    EXPECT_NE(human.out.find("saved by sharing"), std::string::npos);
}

TEST_F(Mem, ForkExecCopiesShareMostlyFileBackedPages) {
    start("  copies:\n    command: [\"" + bin("memhog") +
          "\", \"0\", \"0\", \"0\"]\n    workers: 4\n    start_timeout: 100ms\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("copies", "running") == 4; }));
    auto pool = pool_of(ctl_json({"mem", "copies"}), "copies");
    for (auto& wv : pool["workers"].as_array()) {
        auto& self = wv.as_object()["self"].as_object();
        double shared = num(self["shared_clean"]) + num(self["shared_dirty"]);
        EXPECT_GT(shared, 0);
        EXPECT_GE(num(self["shared_clean"]), 0.9 * shared) << "file-backed: libc, the binary";
    }
}

TEST_F(Mem, SharedAnonymousMemoryCountsOnceInThePool) {
    const double S = 32 * kMiB;
    start("  shm:\n    command: [\"" + bin("memhog") +
          "\", \"0\", \"3\", \"0\", --shared, \"32\", --ready, \"" + ready() +
          "\"]\n    start_timeout: 100ms\n");
    wait_ready(4);
    auto pool = pool_of(ctl_json({"mem", "shm"}), "shm");
    auto& procs = pool["workers"].as_array()[0].as_object()["processes"].as_array();
    ASSERT_EQ(procs.size(), 4u);
    double sum_pss = 0, sum_rss = 0, rest_pss = 0;
    for (auto& pv : procs) {
        auto& p = pv.as_object();
        EXPECT_GE(num(p["shared_dirty"]), S) << "every process maps all of it";
        sum_pss += num(p["pss"]);
        sum_rss += num(p["rss"]);
        rest_pss += rest_of(static_cast<pid_t>(as_int(p["pid"])), {S}).pss;
    }
    EXPECT_TRUE(Near(sum_pss - rest_pss, S)) << "counted once, besides each process's own bits";
    EXPECT_GE(sum_rss, 4 * S) << "rss counts it in every process";
    auto& totals = pool["totals"].as_object();
    EXPECT_GE(num(totals["saved"]), 3 * S - 2 * kMiB);
}

TEST_F(Mem, CopyOnWriteErosionIsMeasuredFromTheFirstSample) {
    const double W = 16 * kMiB;
    start("  cow:\n    command: [\"" + bin("memhog") +
          "\", \"64\", \"2\", \"16\", --write-on-usr1, --ready, \"" + ready() +
          "\"]\n    start_timeout: 100ms\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("cow", "running") == 1; }));
    // Both children exist once the tree shows them; the first sample is the baseline.
    ASSERT_TRUE(WaitFor([&] {
        auto p = pool_of(ctl_json({"mem", "cow"}), "cow");
        return p["workers"].as_array()[0].as_object()["processes"].as_array().size() == 3;
    }));
    auto before = pool_of(ctl_json({"mem", "cow"}), "cow");
    EXPECT_LT(num(before["cow_lost"].as_object()["private_dirty_growth"]), 1 * kMiB);
    ASSERT_EQ(ctl({"signal", "--tree", "USR1", "cow"}).code, 0);
    wait_ready(3);
    auto after = pool_of(ctl_json({"mem", "cow"}), "cow");
    auto& procs = after["workers"].as_array()[0].as_object()["processes"].as_array();
    for (std::size_t i = 1; i < procs.size(); ++i) {
        auto& lost = procs[i].as_object()["cow_lost"].as_object();
        EXPECT_TRUE(Near(num(lost["private_dirty_growth"]), W));
        EXPECT_TRUE(Near(num(lost["shared_lost"]), W));
    }
    // Both children wrote the same 16 MiB, so the parent is left the only mapper of the
    // original pages, which the kernel then counts private in the parent too (up to W more).
    auto& parent = procs[0].as_object()["cow_lost"].as_object();
    EXPECT_LE(num(parent["private_dirty_growth"]), W + kMiB);
    const double pool_growth = num(after["cow_lost"].as_object()["private_dirty_growth"]);
    EXPECT_GE(pool_growth, 2 * W - kMiB);
    EXPECT_LE(pool_growth, 3 * W + 2 * kMiB);
    EXPECT_NE(ctl({"mem", "cow"}).out.find("COW_LOST"), std::string::npos);
}

TEST_F(Mem, MapsBreaksAWorkerDownByMappingGroup) {
    start("  hog:\n    command: [\"" + bin("memhog") + "\", \"32\", \"1\", \"4\", --ready, \"" +
          ready() + "\"]\n    start_timeout: 100ms\n");
    wait_ready(2);
    auto v = ctl_json({"mem", "--maps", "hog.0"});
    auto& r = v.as_object();
    EXPECT_EQ(as_int(r["processes"]), 2);
    auto& groups = r["groups"].as_array();
    ASSERT_FALSE(groups.empty());
    // The 32 MiB table is anonymous memory and the biggest group.
    EXPECT_EQ(groups[0].as_object()["group"].as_string(), "anon");
    EXPECT_GE(num(groups[0].as_object()["rss"]), 2 * 32 * kMiB - kMiB);
    bool libc = false;
    for (auto& g : groups)
        libc |= g.as_object()["name"].as_string().find("libc.so") == 0;
    EXPECT_TRUE(libc);
    EXPECT_NE(ctl({"mem", "--maps", "hog.0"}).out.find("PRIVATE"), std::string::npos);
}

TEST_F(Mem, RecyclesAWorkerOverItsPrivateLimit) {
    start("  fat:\n    command: [\"" + bin("memhog") +
          "\", \"32\", \"0\", \"0\"]\n    start_timeout: 100ms\n"
          "    memory: {max_private: 16MiB, check_every: 200ms}\n");
    ASSERT_TRUE(WaitFor([&] { return as_int(workers("fat")[0]["recycles"]) >= 1; },
                        std::chrono::seconds(20)));
    auto w = workers("fat")[0];
    EXPECT_NE(std::string(w["recycled"].as_string()).find("> 16.0 MiB"), std::string::npos);
    // memhog may still be touching its 32 MiB when a check finds it over the limit (a busy
    // machine saw 24.1 MiB): the figure is over 16 MiB and at most what memhog holds.
    const std::string l = slurp(log);
    const std::string said = "fat.0 recycled: private ";
    const auto at = l.find(said);
    ASSERT_NE(at, std::string::npos) << l;
    const double mib = std::strtod(l.c_str() + at + said.size(), nullptr);
    EXPECT_GT(mib, 16.0) << l;
    EXPECT_LE(mib, 32.0 + 2.0) << l;
    EXPECT_EQ(as_int(w["restarts"]), 0) << "a recycle is not a failure";
}

// A worker we may not read is reported as unreadable, never as zero. Root reads everything,
// so the daemon runs as nobody here and the worker makes itself non-dumpable.
TEST_F(Mem, UnreadableProcessesAreMarkedNotZero) {
    if (run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "true"}).code != 0)
        GTEST_SKIP() << "setpriv cannot drop to nobody here";
    chmod(dir.c_str(), 0777);
    launcher = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    start("  secret:\n    command: [\"" + bin("undumpable") +
          "\"]\n    start_timeout: 100ms\n  open:\n    command: [sleep, \"100000\"]\n"
          "    start_timeout: 100ms\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("secret", "running") == 1; }));
    auto v = ctl_json({"mem"});
    auto secret = pool_of(v, "secret");
    auto& w = secret["workers"].as_array()[0].as_object();
    EXPECT_EQ(w["status"].as_string(), "unreadable");
    EXPECT_TRUE(w["self"].is_null());
    EXPECT_EQ(as_int(secret["unreadable"]), 1);
    EXPECT_EQ(as_int(secret["totals"].as_object()["pss"]), 0);
    auto open = pool_of(v, "open");
    EXPECT_GT(as_int(open["totals"].as_object()["pss"]), 0);
    EXPECT_NE(ctl({"mem", "secret"}).out.find("unreadable"), std::string::npos);
}

}  // namespace

namespace {

TEST_F(Mem, DeepSplitsPagesByWhoSharesThemAndAgreesWithSmaps) {
    start("  hog:\n    command: [\"" + bin("memhog") + "\", \"64\", \"3\", \"8\", --ready, \"" +
          ready() + "\"]\n    start_timeout: 100ms\n");
    wait_ready(4);
    auto v = ctl_json({"mem", "hog", "--deep"});
    auto& r = v.as_object();
    EXPECT_LT(r["pss_max_diff_pct"].to_number<double>(), 1.0) << "PSS from pages vs smaps_rollup";
    auto& procs = r["processes"].as_array();
    ASSERT_EQ(procs.size(), 4u);
    const double A = 64 * kMiB, W = 8 * kMiB;
    int children = 0;
    double rest_rss = 0;
    for (auto& pv : procs) {
        auto& p = pv.as_object();
        ASSERT_EQ(p["status"].as_string(), "ok");
        const Rest rest = rest_of(static_cast<pid_t>(as_int(p["pid"])), {A});
        rest_rss += rest.rss;
        if (p["master"].as_bool()) continue;
        ++children;
        // The table: W rewritten, A - W still shared, with pool members only (memhog made it
        // after its exec). Of the rest (libc, the binary, its heap), any part may be shared
        // with outsiders or only inside the pool.
        EXPECT_TRUE(Near(num(p["private"]), W + rest.priv)) << "what the child rewrote";
        EXPECT_TRUE(Between(num(p["pool_shared"]), A - W, A - W + rest.shared))
            << "still shared inside the pool";
        EXPECT_TRUE(Between(num(p["with_master"]), A - W, A - W + rest.shared));
        EXPECT_TRUE(Between(num(p["outside_shared"]), 0, rest.shared)) << "libc and such";
    }
    EXPECT_EQ(children, 3);
    auto& t = r["totals"].as_object();
    EXPECT_TRUE(Between(num(t["distinct"]), A + 3 * W, A + 3 * W + rest_rss));
    EXPECT_GT(as_int(r["pages_read"]), 0);
    EXPECT_NE(ctl({"mem", "hog", "--deep"}).out.find("WITH_MASTER"), std::string::npos);
}

}  // namespace
