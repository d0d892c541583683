// Readiness and liveness probes on a real HTTP server (examples/cow-http), with no sd_notify:
// readiness gates running and rolls, liveness restarts a hung worker with its cause said, and a
// kept-alive probe connection whose server is gone is not a failure.
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
    // Serves on a shared socket, and answers an HTTP readiness probe on a port of its own
    // (COWHERD_PROBE_PORT) once it serves, `delay_ms` after it starts.
    std::string web_http(int port, int probe_base, const std::string& delay_ms, int workers) {
        return "  web:\n    command: [sh, -c, \"exec " + bin("cow-http") + " --startup-delay " +
               delay_ms + " --port $COWHERD_PROBE_PORT\"]\n" +
               "    workers: " + std::to_string(workers) + "\n" +
               "    sockets: [{name: http, listen: \"tcp://127.0.0.1:" + std::to_string(port) +
               "\"}]\n    start_timeout: 30s\n    stop_timeout: 5s\n" +
               "    readiness:\n      http: \"http://127.0.0.1:{port}/\"\n      port: " +
               std::to_string(probe_base) + "\n      interval: 100ms\n";
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
    const int port = free_port_block(2);  // the probe ports of both generations
    const int metrics = free_port();
    start("  api:\n    command: [sh, -c, \"exec " + bin("cow-http") +
              " --port $COWHERD_PROBE_PORT\"]\n    stop_timeout: 2s\n    liveness:\n"
              "      http: \"http://127.0.0.1:{port}/\"\n      port: " +
              std::to_string(port) +
              "\n      interval: 200ms\n      timeout: 200ms\n      failures: 2\n",
          "  metrics: \"127.0.0.1:" + std::to_string(metrics) + "\"\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("api", "running") == 1; }));
    const pid_t pid = static_cast<pid_t>(as_int(workers("api")[0]["pid"]));
    ASSERT_TRUE(events_of("api", "probe").empty()) << "a serving worker passes";
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
    // The metrics count it as cowherd's.
    EXPECT_TRUE(WaitFor([&] {
        auto r = run({"curl", "-s", "--max-time", "5",
                      "http://127.0.0.1:" + std::to_string(metrics) + "/metrics"},
                     std::chrono::seconds(10));
        return r.out.find(
                   "cowherd_worker_exits_total{pool=\"api\",worker=\"api.0\",cause="
                   "\"killed_by_cowherd\",") != std::string::npos;
    }));
    // And a new process serves; the restart was cowherd's own, so it counts.
    ASSERT_TRUE(WaitFor([&] {
        auto ws = workers("api");
        return !ws.empty() && ws[0]["state"] == "running" && as_int(ws[0]["pid"]) != pid;
    }));
    EXPECT_EQ(as_int(workers("api")[0]["restarts"]), 1);
}

// Plain HTTP servers without sd_notify, gated by an HTTP probe of each process's own port.
TEST_F(Probes, ARollGatedByAReadinessProbeFailsNoRequest) {
    const int port = free_port();
    // Four probe ports: two workers, two generations each.
    const int probe_base = free_port_block(4);
    start(web_http(port, probe_base, "700", 2));
    ASSERT_TRUE(
        WaitFor([&] { return count_state("web", "running") == 2; }, std::chrono::seconds(20)));
    std::string report;
    const int load = restart_under_load(port, "web", report);
    EXPECT_EQ(load, 0) << "requests failed during the roll:\n" << report;
    // Each replacement came up through its probe.
    int passed = 0;
    for (auto& e : events_of("web", "transition"))
        passed += e["to"] == "running" && e["reason"] == "readiness probe passed";
    EXPECT_EQ(passed, 4) << "two at start, two in the roll";
    // Each was asked at its own port: a replacement's probe failed until it served, where a
    // probe of its predecessor's port would have passed at once.
    EXPECT_FALSE(events_of("web", "probe").empty());
}

// A probe keeps its HTTP connection between probes; when the server behind it dies, the next
// probe finds the connection closed, and that is not the new server's failure.
TEST_F(Probes, AKeptAliveConnectionToAServerThatDiedIsNotAFailure) {
    const int port = free_port();
    start("  api:\n    command: [\"" + bin("cow-http") + "\", --port, \"" + std::to_string(port) +
          "\"]\n    start_timeout: 100ms\n    stop_timeout: 5s\n"
          "    backoff: {initial: 10ms, max: 10ms}\n"
          "    liveness:\n      http: \"http://127.0.0.1:" +
          std::to_string(port) + "/\"\n      interval: 100ms\n      failures: 1\n");
    auto uptime_past = [&](pid_t not_pid, long ms) {
        auto ws = workers("api");
        return !ws.empty() && ws[0]["state"] == "running" && as_int(ws[0]["pid"]) != not_pid &&
               as_int(ws[0]["uptime_ms"]) >= ms;
    };
    ASSERT_TRUE(WaitFor([&] { return uptime_past(0, 1000); }));
    const pid_t first = static_cast<pid_t>(as_int(workers("api")[0]["pid"]));
    ASSERT_EQ(kill(first, SIGKILL), 0);
    ASSERT_TRUE(WaitFor([&] { return uptime_past(first, 2500); }, std::chrono::seconds(20)));
    const pid_t second = static_cast<pid_t>(as_int(workers("api")[0]["pid"]));
    auto v = ctl_json({"history", "api.0"});
    auto& es = v.as_object()["workers"].as_array()[0].as_object()["exits"].as_array();
    ASSERT_EQ(es.size(), 1u) << "only the outside kill: " << json::serialize(es);
    EXPECT_EQ(es[0].as_object()["cause"], "killed_externally");
    EXPECT_TRUE(events_of("api", "probe").empty());
    // Its server saw many requests on few connections: the probes reused theirs.
    ASSERT_EQ(ctl({"stop", "api"}).code, 0);
    std::string line;
    ASSERT_TRUE(WaitFor([&] {
        auto r = ctl({"logs", "api", "-n", "100"});
        const std::string tag = "[" + std::to_string(second) + "]";
        auto at = r.out.find("drained, exiting after ");
        for (; at != std::string::npos; at = r.out.find("drained, exiting after ", at + 1)) {
            auto bol = r.out.rfind('\n', at);
            line = r.out.substr(bol == std::string::npos ? 0 : bol + 1,
                                r.out.find('\n', at) - (bol == std::string::npos ? 0 : bol + 1));
            if (line.find(tag) != std::string::npos) return true;
        }
        return false;
    })) << "no drain line of pid "
        << second;
    unsigned long conns = 0, reqs = 0;
    ASSERT_EQ(
        std::sscanf(line.substr(line.find("drained")).c_str(),
                    "drained, exiting after %lu connection(s) and %lu request(s)", &conns, &reqs),
        2)
        << line;
    EXPECT_GE(reqs, 10u) << line;
    EXPECT_LE(conns, 2u) << line;
}

}  // namespace
