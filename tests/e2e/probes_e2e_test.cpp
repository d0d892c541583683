// Readiness and liveness probes on a real HTTP server (examples/cow-http), with no sd_notify:
// readiness gates running and rolls, liveness restarts a hung worker with its cause said.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

class Probes : public DaemonFixture {
  protected:
    // Serves on a shared socket; ready (its file exists) `delay_ms` after it starts.
    std::string web(int port, const std::string& delay_ms, int workers = 1) {
        return "  web:\n    command: [sh, -c, \"exec " + bin("cow-http") + " --startup-delay " +
               delay_ms + " --ready-file " + (dir / "ready.").string() + "$$\"]\n" +
               "    workers: " + std::to_string(workers) + "\n" +
               "    sockets: [{name: http, listen: \"tcp://127.0.0.1:" + std::to_string(port) +
               "\"}]\n    start_timeout: 30s\n    stop_timeout: 5s\n" +
               "    readiness:\n      exec: [test, -e, \"" + (dir / "ready.").string() +
               "{pid}\"]\n      interval: 100ms\n";
    }
    std::vector<json::object> events_of(const std::string& pool, const std::string& kind) {
        std::vector<json::object> out;
        auto v = ctl_json({"events", "--pool", pool});
        if (!v.is_object()) return out;
        for (auto& e : v.as_object()["events"].as_array())
            if (e.as_object()["kind"] == json::value(kind)) out.push_back(e.as_object());
        return out;
    }
};

TEST_F(Probes, AReadinessProbeGatesRunning) {
    start(web(free_port(), "1500"));
    // Starting, and saying why it is not running yet.
    ASSERT_TRUE(WaitFor([&] {
        auto ws = workers("web");
        return !ws.empty() && ws[0]["state"] == "starting" && ws[0].contains("probe");
    })) << "the worker should be starting, with the probe's failure shown";
    const pid_t pid = static_cast<pid_t>(as_int(workers("web")[0]["pid"]));
    EXPECT_FALSE(fs::exists(dir / ("ready." + std::to_string(pid))));
    ASSERT_TRUE(
        WaitFor([&] { return count_state("web", "running") == 1; }, std::chrono::seconds(20)));
    // Running only once it was ready, and the same process.
    EXPECT_TRUE(fs::exists(dir / ("ready." + std::to_string(pid))));
    EXPECT_EQ(as_int(workers("web")[0]["pid"]), pid);
    bool passed = false;
    for (auto& e : events_of("web", "transition"))
        passed |= e["to"] == "running" && e["reason"] == "readiness probe passed";
    EXPECT_TRUE(passed);
    EXPECT_FALSE(events_of("web", "probe").empty()) << "its failures while starting are events";
}

TEST_F(Probes, ALivenessProbeRestartsAHungWorker) {
    const int port = free_port();
    start("  api:\n    command: [\"" + bin("cow-http") + "\", --port, \"" + std::to_string(port) +
          "\"]\n    stop_timeout: 2s\n    liveness:\n      http: \"http://127.0.0.1:{port}/\"\n" +
          "      port: " + std::to_string(port) +
          "\n      interval: 200ms\n      timeout: 200ms\n      failures: 2\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("api", "running") == 1; }));
    const pid_t pid = static_cast<pid_t>(as_int(workers("api")[0]["pid"]));
    // Passing: nothing happens for a while (several intervals).
    ASSERT_TRUE(WaitFor([&] { return events_of("api", "probe").empty(); }));
    ASSERT_EQ(kill(pid, SIGSTOP), 0);  // hung: alive, answering nothing
    json::object exit;
    ASSERT_TRUE(WaitFor(
        [&] {
            auto v = ctl_json({"history", "api.0"});
            auto& es = v.as_object()["workers"].as_array()[0].as_object()["exits"].as_array();
            if (es.empty()) return false;
            exit = es.back().as_object();
            return true;
        },
        std::chrono::seconds(20)));
    EXPECT_EQ(as_int(exit["pid"]), pid);
    EXPECT_EQ(exit["cause"], "killed_by_cowherd");
    EXPECT_TRUE(std::string(exit["detail"].as_string()).starts_with("liveness probe: "))
        << json::serialize(exit);
    auto probes = events_of("api", "probe");
    ASSERT_GE(probes.size(), 2u);
    EXPECT_EQ(probes.back()["probe"], "liveness");
    bool exit_event = false;
    for (auto& e : events_of("api", "exit"))
        exit_event |= as_int(e["pid"]) == pid && e["cause"] == "killed_by_cowherd";
    EXPECT_TRUE(exit_event);
    // And a new process serves.
    ASSERT_TRUE(WaitFor([&] {
        auto ws = workers("api");
        return !ws.empty() && ws[0]["state"] == "running" && as_int(ws[0]["pid"]) != pid;
    }));
}

TEST_F(Probes, ARollGatedByAReadinessProbeFailsNoRequest) {
    const int port = free_port();
    start(web(port, "700", 2));
    ASSERT_TRUE(
        WaitFor([&] { return count_state("web", "running") == 2; }, std::chrono::seconds(20)));
    const std::string load_out = (dir / "load.txt").string();
    int fd = open(load_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_t load = spawn_with({bin("bench_httpload"), "127.0.0.1", std::to_string(port),
                             "--connections", "4", "--duration", "6"},
                            fd, fd);
    close(fd);
    ASSERT_GT(load, 0);
    auto r = ctl({"restart", "web"}, std::chrono::seconds(60));
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    int st = 0;
    ASSERT_TRUE(
        WaitFor([&] { return waitpid(load, &st, WNOHANG) == load; }, std::chrono::seconds(30)));
    EXPECT_EQ(decode(st), 0) << "requests failed during the roll:\n" << slurp(load_out);
    // Each replacement came up through its probe.
    int passed = 0;
    for (auto& e : events_of("web", "transition"))
        passed += e["to"] == "running" && e["reason"] == "readiness probe passed";
    EXPECT_EQ(passed, 4) << "two at start, two in the roll";
}

}  // namespace
