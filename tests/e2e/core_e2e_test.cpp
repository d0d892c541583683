// The supervisor core end to end: real cowherd, real cowctl, real workers.
#include <sys/socket.h>
#include <sys/un.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

const std::string kSleepPool = R"(  web:
    command: ["sleep", "100000"]
    workers: 4
    start_timeout: 200ms
    stop_timeout: 5s
)";

class Core : public DaemonFixture {};

TEST_F(Core, PoolOfFourRuns) {
    start(kSleepPool);
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 4; }));
    auto ws = workers("web");
    std::set<std::int64_t> pids;
    for (auto& w : ws) {
        pids.insert(as_int(w["pid"]));
        EXPECT_EQ(as_int(w["restarts"]), 0);
        EXPECT_EQ(as_int(w["generation"]), 1);
        EXPECT_TRUE(alive(static_cast<pid_t>(as_int(w["pid"]))));
    }
    EXPECT_EQ(pids.size(), 4u);
    auto human = ctl({"status"});
    EXPECT_EQ(human.code, 0);
    EXPECT_NE(human.out.find("web.3"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("running"), std::string::npos);
}

TEST_F(Core, KilledWorkerIsReplacedWithOneRestart) {
    start(kSleepPool);
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 4; }));
    auto before = workers("web.2")[0];
    pid_t old = static_cast<pid_t>(as_int(before["pid"]));
    ASSERT_EQ(kill(old, SIGKILL), 0);
    ASSERT_TRUE(WaitFor([&] {
        auto w = workers("web.2")[0];
        return as_int(w["restarts"]) == 1 && w["state"].as_string() == "running";
    }));
    auto after = workers("web.2")[0];
    EXPECT_NE(as_int(after["pid"]), old);
    EXPECT_EQ(as_int(after["generation"]), 2);
    EXPECT_EQ(as_int(after["last_exit"].as_object()["signal"]), 9);
    for (auto& w : workers("web")) {
        if (w["name"].as_string() != "web.2") {
            EXPECT_EQ(as_int(w["restarts"]), 0);
        }
    }
}

TEST_F(Core, WorkerThatExitsAtOnceBacksOffThenGoesFatal) {
    start(R"(  crash:
    command: [")" +
          bin("exit_with") + R"(", "3"]
    start_timeout: 1s
    backoff: {initial: 50ms, max: 200ms}
    max_restarts: {count: 3, within: 60s}
)");
    bool saw_backoff = false;
    ASSERT_TRUE(WaitFor([&] {
        auto w = workers("crash")[0];
        saw_backoff |= w["state"].as_string() == "backoff";
        return w["state"].as_string() == "fatal";
    }));
    auto w = workers("crash")[0];
    EXPECT_EQ(as_int(w["last_exit"].as_object()["code"]), 3);
    EXPECT_EQ(as_int(w["restarts"]), 3);
    EXPECT_TRUE(w["pid"].is_null());
    // The daemon log tells the same story, one line per transition.
    std::string l = slurp(log);
    EXPECT_NE(l.find("crash.0 pid"), std::string::npos);
    EXPECT_NE(l.find("-> backoff: exited with status 3"), std::string::npos) << l;
    EXPECT_NE(l.find("-> fatal"), std::string::npos);
    (void)saw_backoff;  // backoff may be too short to observe; the log above proves it
}

TEST_F(Core, MissingBinaryErrorSentenceShowsInStatus) {
    start(R"(  ghost:
    command: ["/nonexistent/ghost-binary", "--flag"]
    backoff: {initial: 50ms, max: 100ms}
    max_restarts: {count: 2, within: 60s}
)");
    ASSERT_TRUE(WaitFor([&] { return workers("ghost")[0]["state"].as_string() == "fatal"; }));
    auto w = workers("ghost")[0];
    EXPECT_EQ(w["error"].as_string(), "exec /nonexistent/ghost-binary: No such file or directory");
    auto human = ctl({"status", "ghost"});
    EXPECT_NE(human.out.find("exec /nonexistent/ghost-binary: No such file or directory"),
              std::string::npos)
        << human.out;
    EXPECT_NE(slurp(log).find("exec /nonexistent/ghost-binary: No such file or directory"),
              std::string::npos);
}

TEST_F(Core, StopStartRestartPoolsAndSingleWorkers) {
    start(kSleepPool);
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 4; }));
    auto pids_of = [&] {
        std::map<std::string, std::int64_t> m;
        for (auto& w : workers("web"))
            m[std::string(w["name"].as_string())] = as_int(w["pid"]);
        return m;
    };

    // One worker: stop waits until it is gone.
    auto before = pids_of();
    auto r = ctl({"stop", "web.1"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_FALSE(alive(static_cast<pid_t>(before["web.1"])));
    EXPECT_EQ(workers("web.1")[0]["state"].as_string(), "stopped");
    EXPECT_EQ(count_state("web", "running"), 3);

    r = ctl({"start", "web.1"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(workers("web.1")[0]["state"].as_string(), "running");

    // One worker: restart replaces its process, leaves the others alone.
    before = pids_of();
    r = ctl({"restart", "web.0"});
    ASSERT_EQ(r.code, 0) << r.err;
    auto after = pids_of();
    EXPECT_NE(after["web.0"], before["web.0"]);
    EXPECT_EQ(after["web.2"], before["web.2"]);
    EXPECT_EQ(as_int(workers("web.0")[0]["restarts"]), 0) << "operator restarts are not failures";

    // The pool.
    r = ctl({"stop", "web"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(count_state("web", "stopped"), 4);
    for (auto& [n, pid] : after)
        EXPECT_FALSE(alive(static_cast<pid_t>(pid))) << n;
    r = ctl({"start", "web"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(count_state("web", "running"), 4);
    before = pids_of();
    r = ctl({"restart", "web"});
    ASSERT_EQ(r.code, 0) << r.err;
    after = pids_of();
    for (auto& [n, pid] : after)
        EXPECT_NE(pid, before[n]) << n;
    EXPECT_EQ(count_state("web", "running"), 4);
}

TEST_F(Core, SigtermStopsEveryWorkerAndExitsZero) {
    start(kSleepPool);
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 4; }));
    std::vector<pid_t> pids;
    for (auto& w : workers("web"))
        pids.push_back(static_cast<pid_t>(as_int(w["pid"])));
    ASSERT_EQ(kill(daemon, SIGTERM), 0);
    ASSERT_TRUE(wait_exit(std::chrono::seconds(15)));
    EXPECT_EQ(exit_status, 0);
    for (pid_t p : pids)
        EXPECT_FALSE(alive(p)) << p;
    EXPECT_FALSE(fs::exists(socket)) << "the socket is removed on exit";
}

TEST_F(Core, ShutdownVerbStopsEverythingAndExitsZero) {
    start(kSleepPool);
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 4; }));
    auto r = ctl({"shutdown"});
    EXPECT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(wait_exit(std::chrono::seconds(15)));
    EXPECT_EQ(exit_status, 0);
}

TEST_F(Core, CtlWithoutDaemonExitsThree) {
    auto r = ctl({"status"});
    EXPECT_EQ(r.code, 3);
    EXPECT_NE(r.err.find("cannot reach cowherd"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
}

TEST_F(Core, SecondDaemonOnTheSameSocketIsRefused) {
    start(kSleepPool);
    auto second = run({bin("cowherd"), "-c", config}, std::chrono::seconds(10));
    EXPECT_EQ(second.code, 1);
    EXPECT_NE(second.err.find("already running on " + socket), std::string::npos) << second.err;
    EXPECT_EQ(ctl({"status"}).code, 0) << "the first daemon is unharmed";
}

TEST_F(Core, UnknownTargetsAndBadUsage) {
    start(kSleepPool);
    auto r = ctl({"stop", "nosuchpool"});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("no pool named"), std::string::npos);
    r = ctl({"stop", "web.9"});
    EXPECT_EQ(r.code, 1);
    r = ctl({"signal", "NOTASIG", "web"});
    EXPECT_EQ(r.code, 2);
    r = ctl({"frobnicate"});
    EXPECT_EQ(r.code, 2);
}

TEST_F(Core, SignalReachesTheWorkers) {
    start(kSleepPool);
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 4; }));
    auto r = ctl({"signal", "KILL", "web.3"});
    EXPECT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(WaitFor([&] { return as_int(workers("web.3")[0]["restarts"]) == 1; }));
}

// Raw protocol abuse: garbage, unknown verbs, oversize lines. Each gets an error reply or a
// closed connection, and the daemon carries on.
TEST_F(Core, MalformedRequestsGetErrorsAndTheDaemonCarriesOn) {
    start(kSleepPool);
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 4; }));
    auto talk = [&](const std::string& bytes) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strcpy(a.sun_path, socket.c_str());
        if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return std::string("!");
        std::size_t off = 0;
        while (off < bytes.size()) {
            ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += static_cast<std::size_t>(n);
        }
        std::string reply;
        char buf[4096];
        WaitFor([&] {
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, 10) > 0) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n <= 0) return true;
                reply.append(buf, static_cast<std::size_t>(n));
            }
            return reply.find('\n') != std::string::npos;
        });
        close(fd);
        return reply;
    };
    EXPECT_NE(talk("garbage\n").find("\"bad_request\""), std::string::npos);
    EXPECT_NE(talk("{\"v\":1,\"id\":3,\"cmd\":\"rm -rf\"}\n").find("\"unknown_verb\""),
              std::string::npos);
    EXPECT_NE(talk("{\"v\":1,\"id\":4,\"cmd\":\"__class__\"}\n").find("\"unknown_verb\""),
              std::string::npos);
    EXPECT_NE(talk(std::string(200000, 'x')).find("\"too_large\""), std::string::npos);
    EXPECT_NE(talk("{\"v\":1,\"id\":5,\"cmd\":\"stop\",\"args\":{\"target\":\"../../x\"}}\n")
                  .find("\"invalid_argument\""),
              std::string::npos);
    EXPECT_NE(talk(std::string("\x00\xff\xfe\n", 4)).find("bad_request"), std::string::npos);
    EXPECT_EQ(ctl({"status"}).code, 0);
    EXPECT_EQ(count_state("web", "running"), 4);
}

TEST_F(Core, CheckValidatesConfigs) {
    write_config(kSleepPool);
    auto ok = run({bin("cowherd"), "--check", "-c", config});
    EXPECT_EQ(ok.code, 0) << ok.err;
    std::ofstream(config) << "pools:\n  web:\n    command: [sleep, 1]\n    wokers: 2\n";
    auto bad = run({bin("cowherd"), "--check", "-c", config});
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.err.find(config + ":4:5: pools.web.wokers"), std::string::npos) << bad.err;
    EXPECT_NE(bad.err.find("did you mean \"workers\""), std::string::npos) << bad.err;
}

}  // namespace
