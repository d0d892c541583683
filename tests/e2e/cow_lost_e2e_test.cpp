// COW_LOST for preforking servers (issue 11, defect 8). A prefork master (gunicorn --preload,
// uWSGI) is ready, and so sampled, before it forks; its workers then rewrite shared pages
// long before anyone runs `cowctl mem`. That erosion must show at the first `mem` call.
#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

class CowLost : public DaemonFixture {
  protected:
    std::string ready() const { return (dir / "ready").string(); }

    void wait_lines(std::size_t lines) {
        ASSERT_TRUE(WaitFor(
            [&] {
                std::string s = slurp(ready());
                return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')) == lines;
            },
            std::chrono::seconds(30)));
    }

    static double num(const json::value& v) { return v.to_number<double>(); }
    static json::object& lost(json::value& proc) {
        return proc.as_object()["cow_lost"].as_object();
    }
};

// Within 2 % + 1 MiB: a process's own stack and libc data pages come on top of the table.
::testing::AssertionResult Near(double got, double want) {
    double tol = 0.02 * want + kMiB;
    if (std::abs(got - want) <= tol) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "got " << got / kMiB << " MiB, want " << want / kMiB << " MiB +- " << tol / kMiB;
}

TEST_F(CowLost, ErosionBeforeTheFirstMemCallShows) {
    const double W = 8 * kMiB;
    const int K = 3;
    start("  app:\n    command: [\"" + bin("prefork") + "\", \"64\", \"3\", \"8\", " +
          "--fork-on-usr1, --ready, \"" + ready() +
          "\"]\n    ready: notify\n    start_timeout: 30s\n");
    ASSERT_TRUE(
        WaitFor([&] { return count_state("app", "running") == 1; }, std::chrono::seconds(30)));
    // The daemon samples a worker as soon as it is ready: with its 64 MiB table loaded and
    // private, before any fork, as with gunicorn --preload. The fork and all the erosion come
    // after that sample and before anyone asks.
    ASSERT_TRUE(WaitFor([&] { return log_count("memory baseline taken for 1 processes") >= 1; }));
    ASSERT_EQ(ctl({"signal", "USR1", "app"}).code, 0);
    wait_lines(K + 1);

    auto v = ctl_json({"mem", "app"});  // the first `mem` call
    auto& pool = v.as_object()["pools"].as_array()[0].as_object();
    auto& procs = pool["workers"].as_array()[0].as_object()["processes"].as_array();
    ASSERT_EQ(procs.size(), static_cast<std::size_t>(K + 1));
    for (std::size_t i = 1; i < procs.size(); ++i) {
        EXPECT_TRUE(Near(num(lost(procs[i])["private_dirty_growth"]), W)) << "child " << i;
        EXPECT_TRUE(Near(num(lost(procs[i])["shared_lost"]), W)) << "child " << i;
        EXPECT_EQ(lost(procs[i])["baseline"].as_string(), "fork");
    }
    // Every child rewrote the same 8 MiB: the master is left the only mapper of the original
    // pages, which are private to it now.
    EXPECT_TRUE(Near(num(lost(procs[0])["private_dirty_growth"]), W)) << "master";
    EXPECT_EQ(lost(procs[0])["baseline"].as_string(), "fork");
    const double total = num(pool["cow_lost"].as_object()["private_dirty_growth"]);
    EXPECT_GE(total, (K + 1) * W - kMiB);
    EXPECT_LE(total, (K + 1) * W + 4 * kMiB);
}

// A program that a worker's shell forks and execs is not a copy of anything: what it
// allocates is its own, not erosion, even when it is first seen with all of it. The shell
// starts it only when told, after the daemon has taken its baseline of the worker.
TEST_F(CowLost, AnExecdChildIsMeasuredFromItsFirstSample) {
    const std::string go = (dir / "go").string();
    ASSERT_EQ(mkfifo(go.c_str(), 0600), 0);
    start("  sh:\n    command: [sh, -c, 'read x < \"" + go + "\"; \"" + bin("memhog") +
          "\" 32 0 0 --ready \"" + ready() + "\" & wait']\n    start_timeout: 100ms\n");
    ASSERT_TRUE(WaitFor([&] { return log_count("memory baseline taken for 1 processes") >= 1; }));
    { std::ofstream(go) << "go\n"; }
    wait_lines(1);
    auto v = ctl_json({"mem", "sh"});
    auto& procs = v.as_object()["pools"]
                      .as_array()[0]
                      .as_object()["workers"]
                      .as_array()[0]
                      .as_object()["processes"]
                      .as_array();
    ASSERT_EQ(procs.size(), 2u);
    EXPECT_GE(num(procs[1].as_object()["private_dirty"]), 32 * kMiB);
    EXPECT_LT(num(lost(procs[1])["private_dirty_growth"]), kMiB);
    EXPECT_EQ(lost(procs[1])["baseline"].as_string(), "first sample");
}

}  // namespace
