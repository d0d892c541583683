// `cowctl mem` and the orphans a worker leaves (issue 11, defect 5): a process that outlived
// its parent in a worker's tree is reparented to cowherd, and no worker's tree reaches it any
// more. It used to be reported nowhere (0 B); it shows under the worker it came from and is
// counted in its pool, also once that worker's process is gone.
#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

class MemOrphans : public DaemonFixture {
  protected:
    std::string ready() const { return (dir / "ready").string(); }
    std::string hog() const {
        return "\"" + bin("memhog") + "\" 16 0 0 --ready \"" + ready() + "\"";
    }

    // The pid memhog wrote once its 16 MiB were touched.
    pid_t wait_hog() {
        pid_t pid = 0;
        EXPECT_TRUE(WaitFor(
            [&] {
                std::istringstream in(slurp(ready()));
                return static_cast<bool>(in >> pid);
            },
            std::chrono::seconds(30)));
        return pid;
    }

    // Waits until the daemon lists `pid` among a pool's orphans (`cowctl tree` adopts
    // whatever reparented to it).
    bool wait_adopted(pid_t pid) {
        return WaitFor(
            [&] {
                auto v = ctl_json({"tree"});
                if (!v.is_object()) return false;
                for (auto& p : v.as_object()["pools"].as_array())
                    for (auto& o : p.as_object()["orphans"].as_array())
                        if (o.as_object()["pid"].to_number<pid_t>() == pid) return true;
                return false;
            },
            std::chrono::seconds(10));
    }

    static double num(const json::value& v) { return v.to_number<double>(); }

    // The row of worker `name` in `mem POOL --json`, and its pool.
    struct Report {
        json::object pool, worker;
    };
    Report report(const std::string& pool, const std::string& name) {
        Report r;
        auto v = ctl_json({"mem", pool});
        for (auto& p : v.as_object()["pools"].as_array())
            if (p.as_object()["name"].as_string() == pool) r.pool = p.as_object();
        if (r.pool.empty()) return r;
        for (auto& w : r.pool["workers"].as_array())
            if (w.as_object()["name"].as_string() == name) r.worker = w.as_object();
        return r;
    }

    static const json::object* row_of(const json::object& worker, pid_t pid) {
        for (auto& p : worker.at("processes").as_array())
            if (p.as_object().at("pid").to_number<pid_t>() == pid) return &p.as_object();
        return nullptr;
    }
};

// A daemonizing child: the worker's subshell starts memhog in the background and exits, so
// memhog reparents to cowherd while the worker runs on.
TEST_F(MemOrphans, AnOrphanOfARunningWorkerShowsUnderIt) {
    start("  w:\n    command: [sh, -c, '(" + hog() +
          " &); exec sleep 100000']\n    orphans: keep\n    start_timeout: 100ms\n");
    const pid_t hog_pid = wait_hog();
    ASSERT_GT(hog_pid, 0);
    ASSERT_TRUE(wait_adopted(hog_pid));
    auto r = report("w", "w.0");
    ASSERT_FALSE(r.worker.empty());
    const auto* row = row_of(r.worker, hog_pid);
    ASSERT_NE(row, nullptr) << "the orphan is not under w.0";
    EXPECT_TRUE(row->at("orphan").as_bool());
    EXPECT_GE(num(row->at("uss")), 16 * kMiB);
    EXPECT_GE(num(r.worker["orphans"].as_object()["uss"]), 16 * kMiB);
    EXPECT_LT(num(r.worker["tree"].as_object()["uss"]), 16 * kMiB) << "not the worker's own";
    EXPECT_DOUBLE_EQ(
        num(r.pool["totals"].as_object()["pss"]),
        num(r.worker["tree"].as_object()["pss"]) + num(r.worker["orphans"].as_object()["pss"]));
    EXPECT_NE(ctl({"mem", "w"}).out.find("(orphan)"), std::string::npos);
}

// The worker's first process starts memhog in the background and exits 3; its replacement
// just sleeps. memhog, kept, outlives the process it came from.
TEST_F(MemOrphans, AKeptOrphanStillShowsOnceItsWorkerProcessIsGone) {
    const std::string mark = (dir / "mark").string();
    start("  w:\n    command: [sh, -c, 'if [ -e \"" + mark + "\" ]; then exec sleep 100000; fi; " +
          "touch \"" + mark + "\"; " + hog() +
          " & exit 3']\n    orphans: keep\n    start_timeout: 100ms\n"
          "    backoff: {initial: 100ms, max: 100ms}\n");
    const pid_t hog_pid = wait_hog();
    ASSERT_GT(hog_pid, 0);
    ASSERT_TRUE(wait_adopted(hog_pid));
    ASSERT_TRUE(WaitFor([&] { return count_state("w", "running") == 1; }));
    auto r = report("w", "w.0");
    ASSERT_FALSE(r.worker.empty());
    EXPECT_NE(num(r.worker["pid"]), hog_pid);
    const auto* row = row_of(r.worker, hog_pid);
    ASSERT_NE(row, nullptr) << "the orphan of w.0's first process is not under w.0";
    EXPECT_GE(num(row->at("uss")), 16 * kMiB);
    EXPECT_GE(num(r.pool["totals"].as_object()["uss"]), 16 * kMiB);
}

}  // namespace
