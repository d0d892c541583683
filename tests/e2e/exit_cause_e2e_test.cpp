// Why a worker died: each cause produced for real, then read back from `cowctl history`,
// `status`, `events`, the metrics and the daemon's log line.
#include <fstream>

#include <signal.h>
#include <unistd.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

// With restart: never a worker finishes, and a daemon whose workers have all finished exits:
// this pool keeps it up to be asked.
const std::string kKeepUp = "  keep:\n    command: [sleep, \"100000\"]\n";

class ExitCauses : public DaemonFixture {
  protected:
    int metrics_port = free_port();
    // Every test's daemon serves metrics, so that each cause is checked there too.
    void begin(const std::string& pools) {
        start(pools, "  metrics: \"127.0.0.1:" + std::to_string(metrics_port) + "\"\n");
    }
    // The sum of cowherd_worker_exits_total for this worker and cause (over its code or signal
    // label); -1 when there is no such series.
    long exits_metric(const std::string& worker, const std::string& cause) {
        auto r = run({"curl", "-s", "--max-time", "5",
                      "http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics"},
                     std::chrono::seconds(10));
        const std::string series = "cowherd_worker_exits_total{pool=\"" +
                                   worker.substr(0, worker.rfind('.')) + "\",worker=\"" + worker +
                                   "\",cause=\"" + cause + "\"";
        long sum = -1;
        for (auto at = r.out.find(series); at != std::string::npos;
             at = r.out.find(series, at + 1)) {
            auto end = r.out.find("} ", at);
            if (end == std::string::npos) break;
            sum = std::max(sum, 0L) + std::strtol(r.out.c_str() + end + 2, nullptr, 10);
        }
        return sum;
    }

    // The exits of one worker, newest first.
    json::array exits(const std::string& worker) {
        auto v = ctl_json({"history", worker});
        if (!v.is_object()) return {};
        for (auto& w : v.as_object()["workers"].as_array())
            if (w.as_object()["name"].as_string() == worker)
                return w.as_object()["exits"].as_array();
        return {};
    }

    // Waits for the worker's first exit and checks that every view gives it the same cause.
    json::object first_exit(const std::string& worker, const std::string& cause) {
        json::array es;
        EXPECT_TRUE(
            WaitFor([&] { return !(es = exits(worker)).empty(); }, std::chrono::seconds(20)))
            << "no exit of " << worker << " recorded";
        if (es.empty()) return {};
        json::object e = es.back().as_object();  // the oldest: the one this test caused
        EXPECT_EQ(e["cause"].as_string(), cause) << json::serialize(e);
        // The event stream says the same of the same pid.
        json::object ev;
        EXPECT_TRUE(WaitFor([&] {
            auto v = ctl_json({"events", "--pool", worker.substr(0, worker.rfind('.'))});
            if (!v.is_object()) return false;
            for (auto& x : v.as_object()["events"].as_array()) {
                auto& o = x.as_object();
                if (o["kind"] == "exit" && o["worker"] == json::value(worker) &&
                    o["pid"] == e["pid"]) {
                    ev = o;
                    return true;
                }
            }
            return false;
        })) << "no exit event for "
            << worker;
        if (!ev.empty()) {
            EXPECT_EQ(ev["cause"], e["cause"]) << json::serialize(ev);
        }
        // The metrics count it.
        EXPECT_TRUE(WaitFor([&] { return exits_metric(worker, cause) >= 1; }))
            << "cowherd_worker_exits_total has no " << cause << " exit of " << worker;
        if (es.size() == 1) {
            auto st = workers(worker);
            if (!st.empty() && st[0]["last_exit"].is_object()) {
                auto last = st[0]["last_exit"].as_object();
                EXPECT_EQ(last["cause"].as_string(), cause) << json::serialize(last);
                EXPECT_EQ(last["pid"], e["pid"]);
            }
        }
        return e;
    }
};

TEST_F(ExitCauses, AnExitCodeIsExited) {
    begin("  w:\n    command: [\"" + bin("exit_with") + "\", \"3\"]\n    restart: never\n" +
          kKeepUp);
    auto e = first_exit("w.0", "exited");
    EXPECT_EQ(as_int(e["code"]), 3);
    EXPECT_EQ(e["detail"].as_string(), "");
    EXPECT_GE(as_int(e["uptime_ms"]), 0);
    EXPECT_GE(as_int(e["ended_ms"]), as_int(e["started_ms"]));
}

TEST_F(ExitCauses, ASegfaultTheWorkerRaisedIsACrash) {
    begin("  w:\n    command: [sh, -c, \"kill -SEGV $$\"]\n    restart: never\n" + kKeepUp);
    auto e = first_exit("w.0", "crashed");
    EXPECT_EQ(as_int(e["signal"]), SIGSEGV);
    EXPECT_TRUE(WaitFor([&] { return log_count("crashed") > 0; })) << "the log line names it";
}

TEST_F(ExitCauses, AKillFromOutsideIsExternalAndSaidSo) {
    begin("  w:\n    command: [sleep, \"100000\"]\n    restart: never\n" + kKeepUp);
    ASSERT_TRUE(WaitFor([&] { return count_state("w", "running") == 1; }));
    const pid_t pid = static_cast<pid_t>(as_int(workers("w")[0]["pid"]));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    auto e = first_exit("w.0", "killed_externally");
    EXPECT_EQ(as_int(e["pid"]), pid);
    EXPECT_EQ(as_int(e["signal"]), SIGKILL);
    EXPECT_EQ(e["detail"].as_string(), "a signal cowherd did not send");
    EXPECT_TRUE(WaitFor([&] { return log_count("killed_externally") > 0; }));
    // The human table says the same.
    auto r = ctl({"history", "w"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("killed_externally"), std::string::npos) << r.out;
}

TEST_F(ExitCauses, TheStopsKillAfterStopTimeoutIsCowherds) {
    const std::string ready = (dir / "ignoring").string();
    begin("  w:\n    command: [\"" + bin("term_ignorer") + "\", \"" + ready +
          "\"]\n    stop_timeout: 300ms\n");
    ASSERT_TRUE(WaitFor([&] { return fs::exists(ready); }));
    auto r = ctl({"stop", "w"});
    ASSERT_EQ(r.code, 0) << r.err;
    auto e = first_exit("w.0", "killed_by_cowherd");
    EXPECT_EQ(as_int(e["signal"]), SIGKILL);
    EXPECT_EQ(e["detail"].as_string(), "stop");
}

TEST_F(ExitCauses, AWatchdogKillIsCowherds) {
    begin("  w:\n    command: [\"" + bin("notifier") +
          "\", ready-then-stop-pinging, \"100\"]\n    ready: notify\n    watchdog: 300ms\n"
          "    restart: never\n" +
          kKeepUp);
    auto e = first_exit("w.0", "killed_by_cowherd");
    EXPECT_EQ(as_int(e["signal"]), SIGABRT) << "not a crash: cowherd sent the ABRT";
    EXPECT_EQ(e["detail"].as_string(), "watchdog");
}

TEST_F(ExitCauses, ARecycleIsCowherdsWithItsReason) {
    begin("  w:\n    command: [\"" + bin("memhog") +
          "\", \"48\", \"0\", \"0\"]\n    memory: {max_private: 16MiB, check_every: 100ms}\n");
    auto e = first_exit("w.0", "killed_by_cowherd");
    EXPECT_EQ(e["detail"].as_string().subview().rfind("recycle: private", 0), 0u)
        << json::serialize(e);
}

TEST_F(ExitCauses, ARestartNamesItself) {
    begin("  w:\n    command: [sleep, \"100000\"]\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("w", "running") == 1; }));
    ASSERT_EQ(ctl({"restart", "w"}).code, 0);
    auto e = first_exit("w.0", "killed_by_cowherd");
    EXPECT_EQ(e["detail"].as_string(), "restart");
    EXPECT_EQ(as_int(e["signal"]), SIGTERM);
}

// A rolling restart's old process: its exit is the slot's too, and cowherd's doing.
TEST_F(ExitCauses, ARollingRestartsOldProcessIsRecorded) {
    begin(
        "  w:\n    command: [sleep, \"100000\"]\n    start_timeout: 100ms\n"
        "    sockets: [{name: http, listen: \"unix:" +
        (dir / "w.sock").string() + "\"}]\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("w", "running") == 1; }));
    const auto old = as_int(workers("w")[0]["pid"]);
    ASSERT_EQ(ctl({"restart", "w"}).code, 0);
    auto e = first_exit("w.0", "killed_by_cowherd");
    EXPECT_EQ(as_int(e["pid"]), old);
    EXPECT_EQ(e["detail"].as_string(), "rolling restart");
    EXPECT_EQ(as_int(e["generation"]), 1);
}

TEST_F(ExitCauses, HistoryKeepsTheNewestFirstAndRefusesABadCount) {
    begin(
        "  w:\n    command: [sh, -c, \"exit 7\"]\n    backoff: {initial: 10ms, max: 10ms}\n"
        "    max_restarts: {count: 5, within: 60s}\n");
    ASSERT_TRUE(WaitFor([&] { return workers("w")[0]["state"].as_string() == "fatal"; }));
    auto all = exits("w.0");
    ASSERT_EQ(all.size(), 6u);
    auto two = ctl_json({"history", "w", "-n", "2"});
    auto es = two.as_object()["workers"].as_array()[0].as_object()["exits"].as_array();
    ASSERT_EQ(es.size(), 2u);
    // The same record (started_ms and ended_ms are worked out from the monotonic clock at each
    // request, so they may differ by a millisecond between two requests).
    EXPECT_EQ(es[0].as_object()["pid"], all[0].as_object()["pid"]) << "newest first";
    EXPECT_EQ(es[0].as_object()["generation"], all[0].as_object()["generation"]);
    EXPECT_GT(as_int(es[0].as_object()["generation"]), as_int(es[1].as_object()["generation"]));
    auto bad = ctl({"history", "w", "-n", "0"});
    EXPECT_EQ(bad.code, 2) << "cowctl refuses it";
    auto none = ctl({"history", "nosuch"});
    EXPECT_EQ(none.code, 1);
    EXPECT_NE(none.err.find("no pool named"), std::string::npos) << none.err;
}

}  // namespace

namespace {

// A kept orphan (a service a script daemonized) is the slot's: its exit is recorded like the
// main process's, marked with its name, and the slot's last exit stays its main process's.
TEST_F(ExitCauses, AKeptOrphansExitIsRecordedAsTheSlots) {
    const std::string pidfile = (dir / "orphan.pid").string();
    begin("  w:\n    command: [sh, -c, \"sleep 100000 & echo $! > " + pidfile +
          "; exit 0\"]\n    restart: never\n    orphans: keep\n" + kKeepUp);
    pid_t orphan = 0;
    ASSERT_TRUE(WaitFor([&] {
        std::ifstream in(pidfile);
        return (in >> orphan) && orphan > 0 && exits("w.0").size() == 1;
    })) << "the script's own exit comes first";
    const auto main_pid = exits("w.0")[0].as_object()["pid"];
    ASSERT_EQ(kill(orphan, SIGTERM), 0);
    json::object rec;
    ASSERT_TRUE(WaitFor([&] {
        auto es = exits("w.0");
        if (es.size() < 2) return false;
        rec = es[0].as_object();  // the newest
        return true;
    })) << "no record of the orphan's exit";
    EXPECT_EQ(as_int(rec["pid"]), orphan);
    // Its name as it was when adopted: "sleep", or "sh" if the fork had not exec'd yet.
    ASSERT_TRUE(rec["orphan"].is_string()) << json::serialize(rec);
    const std::string comm(rec["orphan"].as_string());
    EXPECT_TRUE(comm == "sleep" || comm == "sh") << comm;
    EXPECT_EQ(rec["cause"], "killed_externally");
    EXPECT_EQ(as_int(rec["signal"]), SIGTERM);
    EXPECT_GE(as_int(rec["uptime_ms"]), 0);
    // An event says the same, and the metrics count it.
    EXPECT_TRUE(WaitFor([&] {
        auto v = ctl_json({"events", "--pool", "w"});
        for (auto& x : v.as_object()["events"].as_array()) {
            auto& o = x.as_object();
            if (o["kind"] == "exit" && o["pid"] == rec["pid"] && o["orphan"] == rec["orphan"])
                return true;
        }
        return false;
    }));
    EXPECT_TRUE(WaitFor([&] { return exits_metric("w.0", "killed_externally") == 1; }));
    // status's last exit is still the script's.
    auto st = workers("w.0");
    ASSERT_FALSE(st.empty());
    EXPECT_EQ(st[0]["last_exit"].as_object()["pid"], main_pid);
    EXPECT_EQ(st[0]["last_exit"].as_object()["cause"], "exited");
    auto r = ctl({"history", "w"});
    EXPECT_NE(r.out.find("kept orphan (" + comm + ")"), std::string::npos) << r.out;
}

}  // namespace
