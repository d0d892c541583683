// Probe settings: what loads, what is refused (with file:line:column and key path), and how a
// target is filled in for one worker.
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "daemon/probe/probe_target.hpp"

namespace cow {
namespace {

config::LoadResult load(const std::string& probe_lines) {
    return config::load_text("pools:\n  a:\n    command: /bin/true\n" + probe_lines, "t.yaml",
                             "/base");
}

std::string first_error(const config::LoadResult& r) {
    return r.errors.empty() ? "(no error)" : r.errors.front().to_string();
}

TEST(ProbeConfig, LoadsEachKindWithDefaults) {
    auto r = load(
        "    readiness: {http: \"http://127.0.0.1:{port}/healthz\", port: 8000}\n"
        "    liveness: {tcp: \"localhost:9000\", interval: 500ms, failures: 2}\n");
    ASSERT_TRUE(r.ok()) << first_error(r);
    const auto& p = r.config->pools.at(0);
    ASSERT_TRUE(p.readiness && p.liveness);
    EXPECT_EQ(p.readiness->kind, config::ProbeConfig::Kind::http);
    EXPECT_EQ(p.readiness->interval, Millis(1000));
    EXPECT_EQ(p.readiness->status_max, 399);
    EXPECT_EQ(p.liveness->kind, config::ProbeConfig::Kind::tcp);
    // The timeout defaults to the interval when that is shorter.
    EXPECT_EQ(p.liveness->timeout, Millis(500));
    EXPECT_EQ(p.liveness->failures, 2);
    EXPECT_TRUE(config::restarts_rolling(p)) << "a readiness probe makes restarts rolling";
    auto e = load("    liveness: {exec: \"check --fast\", status: 200-299}\n");
    ASSERT_TRUE(e.ok()) << first_error(e);
    EXPECT_EQ(e.config->pools.at(0).liveness->command,
              (std::vector<std::string>{"check", "--fast"}));
}

TEST(ProbeConfig, RefusesWhatCannotWork) {
    EXPECT_EQ(first_error(load("    readiness: {interval: 1s}\n")),
              "t.yaml:4:16: pools.a.readiness: a probe needs one of http, tcp or exec");
    EXPECT_EQ(first_error(load("    readiness: {tcp: \"a:1\", exec: [x]}\n")),
              "t.yaml:4:16: pools.a.readiness: a probe has exactly one of http, tcp or exec");
    EXPECT_NE(first_error(load("    liveness: {http: \"https://x:1/\"}\n")).find("only http://"),
              std::string::npos);
    EXPECT_NE(first_error(load("    liveness: {tcp: \"1:1\", interval: 1s, timeout: 2s}\n"))
                  .find("timeout must not exceed interval"),
              std::string::npos);
    EXPECT_NE(first_error(load("    liveness: {tcp: \"1:1\", status: 99-700}\n"))
                  .find("pools.a.liveness.status"),
              std::string::npos);
    EXPECT_NE(first_error(load("    ready: notify\n    readiness: {tcp: \"1:1\"}\n"))
                  .find("choose one way to tell readiness"),
              std::string::npos);
    EXPECT_NE(first_error(load("    readiness: {tcp: \"1:{port}\", port: 9000}\n"
                               "    liveness: {tcp: \"1:{port}\", port: 9100}\n"))
                  .find("pools.a.liveness.port: differs from readiness.port"),
              std::string::npos);
    EXPECT_EQ(first_error(load("    readiness: {tcp: \"1:{port}\", port: 9000}\n"
                               "    liveness: {tcp: \"1:{port}\", port: 9000}\n")),
              "(no error)");
}

TEST(ProbeTarget, FillsInTheWorkerAndParses) {
    config::PoolConfig pool;
    config::SocketConfig s;
    s.kind = config::SocketConfig::Kind::tcp;
    s.port = 7000;
    pool.sockets.push_back(s);
    config::ProbeConfig own;
    own.port = 8000;
    EXPECT_EQ(probe::expand("http://127.0.0.1:{port}/w/{index}?p={pid}", own, pool, 3, 42, 4),
              "http://127.0.0.1:8006/w/3?p=42");
    EXPECT_EQ(probe::expand("127.0.0.1:{port}", own, pool, 3, 43, 5), "127.0.0.1:8007")
        << "a replacement is asked at a port its predecessor does not have";
    EXPECT_EQ(probe::expand("127.0.0.1:{port}", own, pool, 2, 44, 5), "127.0.0.1:8005")
        << "and no two indexes share one";
    EXPECT_EQ(probe::expand("127.0.0.1:{port}", config::ProbeConfig{}, pool, 3, 42, 1),
              "127.0.0.1:7000")
        << "without a port of its own: the pool's socket";
    auto ep = std::get<probe::Endpoint>(probe::parse_http("http://localhost:8003/healthz?x=1"));
    EXPECT_EQ(ep.host, "127.0.0.1");
    EXPECT_EQ(ep.port, 8003);
    EXPECT_EQ(ep.path, "/healthz?x=1");
    EXPECT_EQ(ep.host_header, "localhost:8003");
    EXPECT_EQ(std::get<probe::Endpoint>(probe::parse_http("http://[::1]:80")).path, "/");
    EXPECT_TRUE(std::holds_alternative<std::string>(probe::parse_tcp("127.0.0.1:0")));
    EXPECT_TRUE(std::holds_alternative<std::string>(probe::parse_tcp("nohost")));
}

}  // namespace
}  // namespace cow
