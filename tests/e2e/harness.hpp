// End-to-end harness: a real cowherd in a temp dir with its own socket, driven by the real
// cowctl. Everything it starts is gone when the test ends, pass or fail.
#pragma once

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <arpa/inet.h>
#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "tests/support/run.hpp"

namespace cow::test {

namespace fs = std::filesystem;

inline std::string bin(const std::string& name) {
    return std::string(COWHERD_BIN_DIR) + "/" + name;
}

// A loopback TCP port that was free a moment ago (the kernel's pick), for a test's server.
inline int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// `n` consecutive loopback ports, free a moment ago, below the kernel's ephemeral range
// (32768 and up by default): there no client connection of a busy machine takes one of them
// meanwhile, as one did to a block found by free_port() + 1.
inline int free_port_block(int n) {
    static unsigned seed = static_cast<unsigned>(::getpid()) * 2654435761u;
    for (int attempt = 0; attempt < 200; ++attempt) {
        seed = seed * 1103515245u + 12345u;
        const int base = 20000 + static_cast<int>((seed >> 8) % 12000);
        bool all = true;
        for (int p = base; all && p < base + n; ++p) {
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a.sin_port = htons(static_cast<uint16_t>(p));
            all = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
            ::close(fd);
        }
        if (all) return base;
    }
    ADD_FAILURE() << "no block of " << n << " free ports below 32000";
    return 0;
}

class DaemonFixture : public ::testing::Test {
  protected:
    fs::path dir;
    std::string socket, config, log;
    pid_t daemon = -1;
    int exit_status = -1;
    ProcessJanitor janitor;

    void SetUp() override {
        char tmpl[] = "/tmp/cowherd-e2e-XXXXXX";
        dir = mkdtemp(tmpl);
        socket = (dir / "cowherd.sock").string();
        config = (dir / "cowherd.yaml").string();
        log = (dir / "daemon.log").string();
    }

    void TearDown() override {
        if (daemon > 0 && exit_status < 0) {
            kill(daemon, SIGTERM);
            if (!wait_exit(std::chrono::seconds(15))) kill(daemon, SIGKILL);
            wait_exit(std::chrono::seconds(5));
        }
        ProcessJanitor::sweep();
        // A sanitizer build's daemon reports on its stderr, which is this log: a report fails
        // the test even where no reply shows it (a leak, or a bad access during shutdown).
        for (const char* report : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                   "runtime error:", "WARNING: ThreadSanitizer"})
            EXPECT_EQ(log_count(report), 0) << "the daemon's sanitizer found a bug: " << report;
        if (HasFailure()) std::fprintf(stderr, "---- daemon log ----\n%s\n", slurp(log).c_str());
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    // Writes the config (the daemon section with our socket is prepended) and starts cowherd.
    // Prepended to the cowherd command line, e.g. {"unshare", "-p", "-f", "--mount-proc"}.
    std::vector<std::string> launcher;
    std::string log_level = "debug";

    void start(const std::string& pools_yaml, const std::string& daemon_extra = "",
               bool wait_ready = true) {
        write_config(pools_yaml, daemon_extra);
        int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        std::vector<std::string> argv = launcher;
        for (const auto& a :
             {bin("cowherd"), std::string("-c"), config, std::string("--log-level"), log_level})
            argv.push_back(a);
        daemon = spawn_with(argv, fd, fd);
        close(fd);
        ASSERT_GT(daemon, 0);
        if (wait_ready) {
            ASSERT_TRUE(
                WaitFor([&] { return ctl({"version"}).code == 0; }, std::chrono::seconds(10)))
                << slurp(log);
        }
    }

    void write_config(const std::string& pools_yaml, const std::string& daemon_extra = "") {
        std::ofstream f(config);
        f << "daemon:\n  socket: " << socket << "\n  shutdown_timeout: 10s\n"
          << daemon_extra << "pools:\n"
          << pools_yaml;
    }

    RunResult ctl(std::vector<std::string> args,
                  std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
        std::vector<std::string> argv = {bin("cowctl"), "--socket", socket};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv, deadline);
    }

    boost::json::value ctl_json(std::vector<std::string> args) {
        args.push_back("--json");
        auto r = ctl(args);
        EXPECT_EQ(r.code, 0) << r.err;
        boost::system::error_code ec;
        auto v = boost::json::parse(r.out, ec);
        EXPECT_FALSE(ec) << r.out;
        return v;
    }

    // Workers of `pool` from `cowctl status --json`.
    std::vector<boost::json::object> workers(const std::string& pool = "") {
        auto v = ctl_json(pool.empty() ? std::vector<std::string>{"status"}
                                       : std::vector<std::string>{"status", pool});
        std::vector<boost::json::object> out;
        if (!v.is_object()) return out;
        for (auto& p : v.as_object()["pools"].as_array())
            for (auto& w : p.as_object()["workers"].as_array())
                out.push_back(w.as_object());
        return out;
    }

    int count_state(const std::string& pool, const std::string& state) {
        int n = 0;
        for (auto& w : workers(pool))
            n += w["state"].as_string() == state;
        return n;
    }

    bool wait_exit(std::chrono::milliseconds d) {
        if (exit_status >= 0) return true;
        int st = 0;
        bool ok = WaitFor([&] { return waitpid(daemon, &st, WNOHANG) == daemon; }, d);
        if (ok) exit_status = decode(st);
        return ok;
    }

    // Lines of the daemon log containing `needle`.
    int log_count(const std::string& needle) {
        std::string l = slurp(log);
        int n = 0;
        for (auto p = l.find(needle); p != std::string::npos; p = l.find(needle, p + 1))
            ++n;
        return n;
    }

    // bench_httpload on 4 connections against 127.0.0.1:port for `seconds`, while `during`
    // runs: its exit code (0 when no request failed), its report in `report`.
    int under_load(int port, int seconds, const std::function<void()>& during,
                   std::string& report) {
        const std::string out = (dir / "load.txt").string();
        int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        pid_t load = spawn_with({bin("bench_httpload"), "127.0.0.1", std::to_string(port),
                                 "--connections", "4", "--duration", std::to_string(seconds)},
                                fd, fd);
        close(fd);
        EXPECT_GT(load, 0);
        if (load <= 0) return -1;
        during();
        int st = 0;
        const bool done = WaitFor([&] { return waitpid(load, &st, WNOHANG) == load; },
                                  std::chrono::seconds(seconds + 30));
        report = slurp(out);
        return done ? decode(st) : -1;
    }

    // `cowctl restart pool` (a roll, for a pool with sockets) under load on `port`, as
    // under_load() says it; the restart itself must succeed.
    int restart_under_load(int port, const std::string& pool, std::string& report) {
        return under_load(
            port, 6,
            [&] {
                auto r = ctl({"restart", pool}, std::chrono::seconds(60));
                EXPECT_EQ(r.code, 0) << r.out << r.err;
            },
            report);
    }

    // Pids listed one per line in a file (forker's $FORKER_PIDS).
    static std::vector<pid_t> pids_in(const std::string& path) {
        std::vector<pid_t> out;
        std::istringstream in(slurp(path));
        for (pid_t p; in >> p;)
            out.push_back(p);
        return out;
    }

    static bool alive(pid_t pid) { return pid > 0 && kill(pid, 0) == 0 && !zombie(pid); }
    static bool zombie(pid_t pid) {
        std::string s = slurp("/proc/" + std::to_string(pid) + "/stat");
        auto rp = s.rfind(')');
        return rp != std::string::npos && rp + 2 < s.size() && s[rp + 2] == 'Z';
    }
};

inline std::int64_t as_int(const boost::json::value& v) {
    return v.is_null() ? -1 : v.to_number<std::int64_t>();
}

}  // namespace cow::test
