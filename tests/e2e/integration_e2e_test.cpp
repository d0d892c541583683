// Fitting into the machinery around: systemd (sd_notify, the unit file), Prometheus
// (/metrics through promtool) and the daemon's JSON log.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

bool have(const std::string& tool) {
    return run({"sh", "-c", "command -v " + tool}).code == 0;
}

class Integration : public DaemonFixture {};

TEST_F(Integration, SdNotifyReadyOnlyOnceWorkersRunThenStopping) {
    // Play systemd: a datagram socket, and NOTIFY_SOCKET pointing at it.
    const std::string path = (dir / "notify").string();
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    write_config("  slow:\n    command: [\"" + bin("notifier") +
                 "\", ready-after, \"500\"]\n    ready: notify\n    workers: 2\n");
    int lf = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    daemon = spawn_with({bin("cowherd"), "-c", config}, lf, lf, {"NOTIFY_SOCKET=" + path});
    close(lf);
    auto receive = [&](int timeout_ms) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0) return std::string();
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    };
    std::string first;
    for (int i = 0; i < 50 && first.find("READY=1") == std::string::npos; ++i)
        first = receive(200);
    ASSERT_NE(first.find("READY=1"), std::string::npos) << "no READY=1 in 10 s";
    // At READY=1 every worker is up already.
    EXPECT_EQ(count_state("slow", "running"), 2);
    EXPECT_NE(first.find("STATUS=2/2 workers running"), std::string::npos) << first;
    ASSERT_EQ(kill(daemon, SIGTERM), 0);
    std::string stopping;
    for (int i = 0; i < 50 && stopping.find("STOPPING=1") == std::string::npos; ++i)
        stopping = receive(200);
    EXPECT_NE(stopping.find("STOPPING=1"), std::string::npos);
    ASSERT_TRUE(wait_exit(std::chrono::seconds(15)));
    EXPECT_EQ(exit_status, 0);
    close(fd);
    // Workers never inherit the daemon's NOTIFY_SOCKET (theirs is cowherd's own).
    EXPECT_EQ(slurp(log).find("NOTIFY_SOCKET=" + path), std::string::npos);
}

TEST_F(Integration, MetricsPassPromtoolAndMatchStatus) {
    if (!have("promtool")) GTEST_SKIP() << "promtool (Debian package prometheus) is not installed";
    const int port = free_port();
    start(
        "  web:\n    command: [sleep, \"100000\"]\n    workers: 2\n    start_timeout: 100ms\n"
        "  talk:\n    command: [\"" +
            bin("cow-ticker") + "\", \"1\"]\n",
        "  metrics: 127.0.0.1:" + std::to_string(port) + "\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 2; }));
    kill(static_cast<pid_t>(as_int(workers("web.1")[0]["pid"])), SIGKILL);
    ASSERT_TRUE(WaitFor([&] { return as_int(workers("web.1")[0]["restarts"]) == 1; }));
    ASSERT_TRUE(WaitFor([&] { return workers("web.1")[0]["state"].as_string() == "running"; }));
    auto scrape = run({"curl", "-sf", "http://127.0.0.1:" + std::to_string(port) + "/metrics"});
    if (scrape.code != 0) {
        // No curl: speak HTTP ourselves.
        scrape = run({"sh", "-c",
                      "exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port) +
                          "; printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3 | "
                          "sed '1,/^\\r$/d'"});
    }
    ASSERT_EQ(scrape.code, 0);
    const std::string body = scrape.out;
    const std::string file = (dir / "metrics.txt").string();
    std::ofstream(file) << body;
    auto check = run({"sh", "-c", "promtool check metrics < " + file});
    EXPECT_EQ(check.code, 0) << check.out << check.err;
    // The same values status --json shows.
    EXPECT_NE(body.find("cowherd_worker_restarts_total{pool=\"web\",worker=\"web.1\"} 1"),
              std::string::npos);
    EXPECT_NE(body.find("cowherd_worker_restarts_total{pool=\"web\",worker=\"web.0\"} 0"),
              std::string::npos);
    EXPECT_NE(body.find("cowherd_worker_state{pool=\"web\",worker=\"web.0\",state=\"running\"} 1"),
              std::string::npos);
    EXPECT_NE(body.find("cowherd_worker_exits_total{pool=\"web\",worker=\"web.1\",cause=\"killed_"
                        "externally\",signal=\"KILL\"} 1"),
              std::string::npos);
    EXPECT_NE(body.find("cowherd_worker_memory_bytes{pool=\"web\",worker=\"web.0\",kind=\"pss\"}"),
              std::string::npos);
    EXPECT_NE(body.find("cowherd_pool_footprint_bytes{pool=\"web\"}"), std::string::npos);
    EXPECT_NE(body.find("cowherd_log_lines_total{pool=\"talk\",stream=\"stdout\"}"),
              std::string::npos);
    EXPECT_NE(body.find("cowherd_event_loop_lag_seconds"), std::string::npos);
    EXPECT_EQ(body.find("pid=\""), std::string::npos) << "series are never labelled by pid";
}

TEST_F(Integration, SystemdUnitVerifies) {
    if (!have("systemd-analyze"))
        GTEST_SKIP() << "systemd-analyze (Debian package systemd) is not installed";
    // The unit configured for this build names the install's bin directory; point it at this
    // build's binaries, which an install would have put there.
    std::string unit = slurp(COWHERD_UNIT_FILE);
    ASSERT_EQ(unit.find('@'), std::string::npos) << "every @VAR@ of the template is filled in";
    const std::string from = std::string(COWHERD_INSTALL_BINDIR) + "/";
    ASSERT_NE(unit.find(from), std::string::npos) << unit;
    for (auto p = unit.find(from); p != std::string::npos; p = unit.find(from, p))
        unit.replace(p, from.size(), std::string(COWHERD_BIN_DIR) + "/");
    const std::string path = (dir / "cowherd.service").string();
    std::ofstream(path) << unit;
    auto r = run({"systemd-analyze", "verify", path});
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_EQ(r.err, "") << "no warnings either";
    for (const char* key : {"Type=notify", "KillMode=mixed", "RestartPreventExitStatus=2",
                            "RuntimeDirectory=cowherd", "Delegate=yes", "ExecReload="})
        EXPECT_NE(unit.find(key), std::string::npos) << key;
}

TEST_F(Integration, DaemonLogCanBeJson) {
    start("  w:\n    command: [sleep, \"100000\"]\n", "  log_format: json\n");
    ASSERT_TRUE(WaitFor([&] { return slurp(log).find("\"msg\":") != std::string::npos; }));
    std::istringstream in(slurp(log));
    int lines = 0;
    for (std::string l; std::getline(in, l);) {
        boost::system::error_code ec;
        auto v = json::parse(l, ec);
        ASSERT_FALSE(ec) << "not JSON: " << l;
        EXPECT_TRUE(v.as_object().contains("ts"));
        EXPECT_TRUE(v.as_object().contains("level"));
        ++lines;
    }
    EXPECT_GT(lines, 1);
}

}  // namespace
