// Preforked server pools end to end: shared sockets, readiness, watchdog, scaling, rolling
// restarts and live reload, under a steady stream of real HTTP requests.
#include <atomic>
#include <mutex>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

struct Reply {
    bool ok = false;
    pid_t pid = 0;
    std::string tag;
    std::string error;
};

// One HTTP request on a fresh connection (the server closes after each reply).
Reply get_at(const sockaddr* addr, socklen_t len) {
    Reply r;
    int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, addr, len) != 0) {
        r.error = std::string("connect: ") + std::strerror(errno);
        ::close(fd);
        return r;
    }
    const char req[] = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    if (::send(fd, req, sizeof req - 1, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof req - 1)) {
        r.error = "send failed";
        ::close(fd);
        return r;
    }
    std::string resp;
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            r.error = std::string("recv: ") + std::strerror(errno);
            break;
        }
        if (n == 0) break;
        resp.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (!r.error.empty()) return r;
    if (resp.rfind("HTTP/1.1 200", 0) != 0) {
        r.error = "bad response: " + resp.substr(0, 60);
        return r;
    }
    auto body = resp.find("\r\n\r\npid ");
    if (body == std::string::npos) {
        r.error = "no body";
        return r;
    }
    std::istringstream in(resp.substr(body + 4));
    std::string word, worker;
    in >> word >> r.pid >> word >> worker >> r.tag;
    r.ok = r.pid > 0;
    return r;
}

Reply get(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return get_at(reinterpret_cast<sockaddr*>(&a), sizeof a);
}

Reply get_unix(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    return get_at(reinterpret_cast<sockaddr*>(&a), sizeof a);
}

// A bounded client loop on loopback: at most `cap` requests, until stopped.
struct Load {
    int port;
    std::atomic<bool> stop{false};
    std::atomic<int> requests{0}, failures{0};
    std::mutex mu;
    std::vector<std::string> errors;
    std::map<std::string, std::set<pid_t>> pids_by_tag;
    std::thread th;
    explicit Load(int p) : port(p) {
        th = std::thread([this] {
            for (int i = 0; i < 200'000 && !stop; ++i) {
                Reply r = get(port);
                ++requests;
                std::lock_guard lock(mu);
                if (!r.ok) {
                    ++failures;
                    if (errors.size() < 10) errors.push_back(r.error);
                } else {
                    pids_by_tag[r.tag].insert(r.pid);
                }
            }
        });
    }
    void finish() {
        stop = true;
        if (th.joinable()) th.join();
    }
    ~Load() { finish(); }
    std::set<pid_t> pids_since(int mark, const std::string& tag) {
        (void)mark;
        std::lock_guard lock(mu);
        return pids_by_tag[tag];
    }
};

class Prefork : public DaemonFixture {
  protected:
    int port = free_port();

    std::string web_pool(const std::string& tag, int workers, const std::string& extra = "") {
        return "  web:\n    command: [\"" + bin("cow-http") +
               "\"]\n    workers: " + std::to_string(workers) +
               "\n    ready: notify\n    start_timeout: 5s\n    stop_timeout: 5s\n"
               "    env: {COW_HTTP_TAG: " +
               tag +
               "}\n"
               "    sockets: [{name: http, listen: \"tcp://127.0.0.1:" +
               std::to_string(port) + "\"}]\n" + extra;
    }

    std::set<pid_t> running_pids(const std::string& pool) {
        std::set<pid_t> out;
        for (auto& w : workers(pool))
            if (w["state"].as_string() == "running")
                out.insert(static_cast<pid_t>(as_int(w["pid"])));
        return out;
    }

    // Requests answered only by these pids, from now on.
    bool served_only_by(const std::set<pid_t>& pids, int n = 50) {
        for (int i = 0; i < n; ++i) {
            Reply r = get(port);
            if (!r.ok || !pids.count(r.pid)) return false;
        }
        return true;
    }
};

TEST_F(Prefork, NoRequestFailsThroughRestartScaleAndReload) {
    const std::string idle = "  idle:\n    command: [sleep, \"100000\"]\n";
    start(web_pool("v1", 4) + idle);
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 4; }));
    auto before = running_pids("web");
    auto idle_pid = as_int(workers("idle")[0]["pid"]);
    Load load(port);
    ASSERT_TRUE(WaitFor([&] { return load.requests > 20; }));

    // Rolling restart: every worker replaced, successor first.
    auto r = ctl({"restart", "web"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n') >= 4, true) << r.out;
    EXPECT_NE(r.out.find("replaced: pid"), std::string::npos) << r.out;
    auto rolled = running_pids("web");
    ASSERT_EQ(rolled.size(), 4u);
    for (pid_t p : rolled)
        EXPECT_FALSE(before.count(p)) << "pid " << p << " survived the roll";
    EXPECT_TRUE(served_only_by(rolled));

    // Scale down, then up.
    ASSERT_EQ(ctl({"scale", "web", "2"}).code, 0);
    auto two = running_pids("web");
    EXPECT_EQ(two.size(), 2u);
    EXPECT_EQ(workers("web").size(), 2u);
    EXPECT_TRUE(served_only_by(two));
    ASSERT_EQ(ctl({"scale", "web", "6"}).code, 0);
    auto six = running_pids("web");
    EXPECT_EQ(six.size(), 6u);
    for (pid_t p : two)
        EXPECT_TRUE(six.count(p)) << "scaling up keeps the others";

    // Reload with a changed env: a rolling restart onto the new tag.
    write_config(web_pool("v2", 6) + idle);
    r = ctl({"reload"});
    ASSERT_EQ(r.code, 0) << r.err << r.out;
    EXPECT_NE(r.out.find("rolling restart"), std::string::npos) << r.out;
    ASSERT_TRUE(WaitFor([&] {
        Reply x = get(port);
        return x.ok && x.tag == "v2";
    }));
    auto v2 = running_pids("web");
    EXPECT_TRUE(served_only_by(v2));
    EXPECT_EQ(as_int(workers("idle")[0]["pid"]), idle_pid) << "an unchanged pool is untouched";

    load.finish();
    EXPECT_EQ(load.failures.load(), 0) << "first errors: " << [&] {
        std::string s;
        for (auto& e : load.errors)
            s += e + "; ";
        return s;
    }();
    EXPECT_GT(load.requests.load(), 200);
    EXPECT_FALSE(load.pids_by_tag["v1"].empty());
    EXPECT_FALSE(load.pids_by_tag["v2"].empty());
    for (pid_t p : load.pids_by_tag["v2"])
        EXPECT_TRUE(v2.count(p)) << p;
}

TEST_F(Prefork, ABrokenNewVersionStopsTheRollAndKeepsTheOldWorkers) {
    start(web_pool("v1", 3));
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 3; }));
    auto before = running_pids("web");
    // The new version exits before READY=1.
    std::string broken = web_pool("v2", 3);
    auto pos = broken.find("cow-http\"]");
    broken.replace(pos, 10, "cow-http\", \"--fail-start\"]");
    write_config(broken);
    auto r = ctl({"reload"});
    EXPECT_EQ(r.code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("web.0: replacement pid"), std::string::npos) << r.err << r.out;
    EXPECT_NE(r.err.find("exited with status 1 before it was ready"), std::string::npos) << r.err;
    EXPECT_EQ(running_pids("web"), before) << "every old worker still serves";
    EXPECT_TRUE(served_only_by(before));
    auto w0 = workers("web.0")[0];
    EXPECT_NE(std::string(w0["roll_error"].as_string()).find("before it was ready"),
              std::string::npos);
}

TEST_F(Prefork, NotifyReadinessGatesRunningAndStartTimeout) {
    start(R"(  slow:
    command: [")" +
          bin("notifier") + R"(", ready-on-usr1]
    ready: notify
    start_timeout: 30s
  never:
    command: [")" +
          bin("notifier") + R"(", never-ready]
    ready: notify
    start_timeout: 300ms
    backoff: {initial: 10s, max: 10s}
  said:
    command: [")" +
          bin("notifier") + R"(", status, "warming caches"]
    ready: notify
  child:
    command: [")" +
          bin("notifier") + R"(", child-ready]
    ready: notify
)");
    // Alive, but not running until READY=1 (which it sends when told to).
    auto slow = workers("slow")[0];
    EXPECT_EQ(slow["state"].as_string(), "starting");
    ASSERT_GT(as_int(slow["pid"]), 0);
    ASSERT_EQ(::kill(static_cast<pid_t>(as_int(slow["pid"])), SIGUSR1), 0);
    ASSERT_TRUE(WaitFor([&] { return workers("slow")[0]["state"].as_string() == "running"; }));
    ASSERT_TRUE(WaitFor([&] { return workers("never")[0]["state"].as_string() == "backoff"; }));
    EXPECT_NE(std::string(workers("never")[0]["reason"].as_string()).find("no READY=1"),
              std::string::npos);
    ASSERT_TRUE(WaitFor([&] { return workers("said")[0]["state"].as_string() == "running"; }));
    EXPECT_EQ(workers("said")[0]["status_text"].as_string(), "warming caches");
    EXPECT_NE(ctl({"status", "said"}).out.find("warming caches"), std::string::npos);
    // A descendant may speak for its worker.
    ASSERT_TRUE(WaitFor([&] { return workers("child")[0]["state"].as_string() == "running"; }));
}

TEST_F(Prefork, AnOutsiderCannotSpeakForAWorker) {
    // A long backoff, so that the failed start is still what status shows when asked again.
    start("  w:\n    command: [\"" + bin("notifier") +
          "\", impostor]\n    ready: notify\n    start_timeout: 3s\n"
          "    backoff: {initial: 10s, max: 10s}\n");
    pid_t pid = static_cast<pid_t>(as_int(workers("w")[0]["pid"]));
    ASSERT_GT(pid, 0);
    // Its NOTIFY_SOCKET, from its environment; we (not its descendant) send READY=1 there.
    std::string env = slurp("/proc/" + std::to_string(pid) + "/environ");
    auto p = env.find("NOTIFY_SOCKET=@");
    ASSERT_NE(p, std::string::npos);
    std::string name = env.substr(p + 15, env.find('\0', p) - p - 15);
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path + 1, name.data(), name.size());
    const char msg[] = "READY=1\nSTATUS=pwned";
    ASSERT_EQ(::sendto(fd, msg, sizeof msg - 1, 0, reinterpret_cast<sockaddr*>(&a),
                       static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())),
              static_cast<ssize_t>(sizeof msg - 1));
    ::close(fd);
    // The daemon handles datagrams in order; a status request after it sees the result.
    ASSERT_TRUE(WaitFor(
        [&] {
            auto state = workers("w")[0]["state"].as_string();
            return state != "starting" && state != "stopping";
        },
        std::chrono::seconds(10)));
    auto w = workers("w")[0];
    EXPECT_EQ(w["state"].as_string(), "backoff") << "it timed out: the READY=1 was not its own";
    EXPECT_FALSE(w.contains("status_text"));
}

TEST_F(Prefork, WatchdogSilenceRestartsTheWorker) {
    start("  dog:\n    command: [\"" + bin("notifier") +
          "\", ready-then-stop-pinging, \"300\"]\n    ready: notify\n    watchdog: 400ms\n"
          "    stop_timeout: 1s\n");
    ASSERT_TRUE(WaitFor([&] { return as_int(workers("dog")[0]["restarts"]) >= 1; },
                        std::chrono::seconds(15)));
    EXPECT_NE(slurp(log).find("no WATCHDOG=1 within 400ms"), std::string::npos) << slurp(log);
    auto w = workers("dog")[0];
    EXPECT_EQ(as_int(w["last_exit"].as_object()["signal"]), SIGABRT);
}

TEST_F(Prefork, ListenFdsFollowTheSystemdContract) {
    // In directories that do not exist yet: cowherd creates them, as systemd does.
    const std::string unix_path = (dir / "run" / "app" / "admin.sock").string();
    const std::string report = (dir / "sd").string();
    start("  sd:\n    command: [\"" + bin("sdcheck") + "\", \"" + report +
          "\", --stay]\n    workers: 2\n    sockets:\n"
          "      - {name: http, listen: \"tcp://127.0.0.1:" +
          std::to_string(port) +
          "\"}\n"
          "      - {name: admin, listen: \"unix:" +
          unix_path + "\", mode: \"0660\"}\n");
    ASSERT_TRUE(WaitFor([&] { return fs::exists(report); }));
    std::string rep = slurp(report);
    auto value = [&](const std::string& key) {
        auto p = rep.find("\n" + key + "=");
        if (p == std::string::npos) p = rep.rfind(key + "=", 0) == 0 ? 0 : std::string::npos;
        if (p == std::string::npos) return std::string("<missing>");
        p = rep.find('=', p) + 1;
        return rep.substr(p, rep.find('\n', p) - p);
    };
    EXPECT_EQ(value("ok"), "1") << rep;
    EXPECT_EQ(value("env_listen_pid_matches"), "1");
    EXPECT_EQ(value("n"), "2");
    EXPECT_EQ(value("names"), "http:admin");
    EXPECT_EQ(value("fd3"), "tcp 127.0.0.1:" + std::to_string(port) + " listening");
    EXPECT_EQ(value("fd4"), "unix " + unix_path + " listening");
    EXPECT_EQ(value("extra_fds"), "");
    struct stat st {};
    ASSERT_EQ(::stat(unix_path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0660u);
    EXPECT_TRUE(fs::is_directory(dir / "run" / "app"));
}

// Every inherited socket is served, not only fd 3 (a second listener once shared its poll tag
// with the example server's signalfd and was never accepted on).
TEST_F(Prefork, TheExampleServerAnswersOnEverySocket) {
    const std::string unix_path = (dir / "web.sock").string();
    start("  web:\n    command: [\"" + bin("cow-http") +
          "\"]\n    workers: 2\n    ready: notify\n    start_timeout: 5s\n"
          "    sockets:\n      - {name: http, listen: \"tcp://127.0.0.1:" +
          std::to_string(port) + "\"}\n      - {name: local, listen: \"unix:" + unix_path +
          "\"}\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 2; })) << slurp(log);
    const auto pids = running_pids("web");
    for (int i = 0; i < 10; ++i) {
        Reply tcp = get(port);
        ASSERT_TRUE(tcp.ok) << tcp.error;
        EXPECT_TRUE(pids.count(tcp.pid));
        Reply local = get_unix(unix_path);
        ASSERT_TRUE(local.ok) << local.error;
        EXPECT_TRUE(pids.count(local.pid));
    }
}

TEST_F(Prefork, ReloadAddsRemovesAndLeavesUnchangedPoolsAlone) {
    const std::string keep = "  keep:\n    command: [sleep, \"100000\"]\n    workers: 2\n";
    const std::string old = "  old:\n    command: [sleep, \"100001\"]\n";
    start(keep + old);
    ASSERT_TRUE(WaitFor([&] { return count_state("keep", "running") == 2; }));
    auto keep_pids = running_pids("keep");
    auto old_pid = static_cast<pid_t>(as_int(workers("old")[0]["pid"]));

    // Invalid: nothing changes, and the error names the line.
    std::ofstream(config) << "daemon:\n  socket: " << socket << "\npools:\n"
                          << keep << "  new:\n    command: [sleep, \"1\"]\n    workers: many\n";
    auto bad = ctl({"reload"});
    EXPECT_EQ(bad.code, 1);
    EXPECT_NE(bad.err.find(config + ":9:14: pools.new.workers"), std::string::npos)
        << bad.err << bad.out;
    EXPECT_TRUE(alive(old_pid));

    auto dry = ctl({"reload", "--dry-run"});
    EXPECT_EQ(dry.code, 1) << "the dry run of an invalid config fails too";

    write_config(keep + "  fresh:\n    command: [sleep, \"100002\"]\n    start_timeout: 100ms\n");
    auto plan = ctl({"reload", "--dry-run", "--json"});
    ASSERT_EQ(plan.code, 0) << plan.err;
    EXPECT_NE(plan.out.find("\"name\":\"old\",\"change\":\"removed\""), std::string::npos)
        << plan.out;
    EXPECT_TRUE(alive(old_pid)) << "a dry run applies nothing";
    auto r = ctl({"reload"});
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(WaitFor([&] { return !alive(old_pid); }));
    ASSERT_TRUE(WaitFor([&] { return count_state("fresh", "running") == 1; }));
    EXPECT_EQ(running_pids("keep"), keep_pids);
    EXPECT_EQ(ctl({"status", "old"}).code, 1) << "the removed pool is gone";

    // SIGHUP reloads too.
    write_config(keep);
    ASSERT_EQ(kill(daemon, SIGHUP), 0);
    ASSERT_TRUE(WaitFor([&] { return ctl({"status", "fresh"}).code == 1; }));
    EXPECT_EQ(running_pids("keep"), keep_pids);
}

}  // namespace
