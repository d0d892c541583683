// Rolling restarts mixed with what else happens on a real host: other pools crashing, reloads
// and SIGHUPs arriving mid-roll, health probes, and an operator calling a roll off.
#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

class Rolls : public DaemonFixture {
  protected:
    // A cowctl running in the background (a roll takes seconds), its output in a file.
    struct Background {
        pid_t pid = -1;
        std::string out;
        int code = -1;
    };
    Background ctl_bg(const std::vector<std::string>& args) {
        Background b;
        b.out = (dir / ("bg" + std::to_string(++bg_count_))).string();
        std::vector<std::string> argv = {bin("cowctl"), "--socket", socket};
        argv.insert(argv.end(), args.begin(), args.end());
        int fd = open(b.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        b.pid = spawn_with(argv, fd, fd);
        close(fd);
        return b;
    }
    bool finished(Background& b) {
        int st = 0;
        if (b.code >= 0) return true;
        if (waitpid(b.pid, &st, WNOHANG) != b.pid) return false;
        b.code = decode(st);
        return true;
    }
    json::object worker0(const std::string& pool) {
        auto ws = workers(pool);
        return ws.empty() ? json::object{} : ws[0];
    }
    pid_t pid0(const std::string& pool) { return static_cast<pid_t>(as_int(worker0(pool)["pid"])); }
    int bg_count_ = 0;

    std::string web(const std::string& ready_ms) {
        return "  web:\n    command: [\"" + bin("notifier") + "\", ready-after, \"" + ready_ms +
               "\"]\n    ready: notify\n    start_timeout: 20s\n    stop_timeout: 5s\n";
    }
    const std::string crasher =
        "  crash:\n    command: [sh, -c, \"sleep 0.2; exit 1\"]\n    start_timeout: 0s\n"
        "    max_restarts: {count: 10000, within: 1m}\n";
};

TEST_F(Rolls, ARollKeepsItsOldWorkerWhileAnotherPoolCrashLoops) {
    start(web("1500") + crasher);
    ASSERT_TRUE(WaitFor([&] { return worker0("web")["state"].as_string() == "running"; }));
    const pid_t old = pid0("web");
    auto roll = ctl_bg({"restart", "web"});
    // Throughout the roll the old process serves, and health says so.
    int checks = 0;
    while (!finished(roll)) {
        auto h = ctl({"health"});
        EXPECT_EQ(h.code, 0) << h.out << h.err;
        ++checks;
        ASSERT_LT(checks, 2000) << "the roll did not finish";
    }
    EXPECT_EQ(roll.code, 0) << slurp(roll.out);
    EXPECT_GT(checks, 2);
    EXPECT_TRUE(WaitFor([&] { return !alive(old); }));
    // The old process was stopped by the roll, once its replacement was ready, and by nothing
    // else: not taken for an orphan when the other pool's exits were handled.
    auto replaced = [&](pid_t pid) {
        return log_count(" replaces pid " + std::to_string(pid) + "; stopping the old one") == 1 &&
               log_count("old pid " + std::to_string(pid) + " exited with status 0 (replaced)") ==
                   1;
    };
    EXPECT_TRUE(WaitFor([&] { return replaced(old); })) << slurp(log);
    EXPECT_EQ(log_count("adopted orphan pid " + std::to_string(old)), 0) << slurp(log);
    // A second roll goes the same way (no stale predecessor makes it stop-then-start).
    const pid_t second = pid0("web");
    roll = ctl_bg({"restart", "web"});
    EXPECT_TRUE(WaitFor([&] { return finished(roll); }));
    EXPECT_EQ(roll.code, 0) << slurp(roll.out);
    EXPECT_TRUE(WaitFor([&] { return replaced(second); })) << slurp(log);
    // And the shutdown after it has nothing stale to wait for.
    EXPECT_EQ(ctl({"shutdown"}).code, 0);
    ASSERT_TRUE(wait_exit(std::chrono::seconds(8)));
    EXPECT_EQ(exit_status, 0) << slurp(log);
}

TEST_F(Rolls, AReloadAndASighupMidRollAreAppliedAtOnce) {
    // The replacement takes 12 s to be ready: both reloads must land inside the roll even on
    // a loaded machine (a sanitizer build beside other builds), so the pools they add are up
    // at once (start_timeout 0s) and the roll is long.
    const std::string extra = "  extra:\n    command: [sleep, \"100000\"]\n    start_timeout: 0s\n";
    start(web("12000"));
    ASSERT_TRUE(WaitFor([&] { return worker0("web")["state"].as_string() == "running"; },
                        std::chrono::seconds(30)));
    auto roll = ctl_bg({"restart", "web"});
    ASSERT_TRUE(WaitFor([&] { return worker0("web")["state"].as_string() == "starting"; }));
    write_config(web("12000") + extra);
    auto r = ctl({"reload"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(WaitFor([&] { return count_state("extra", "running") == 1; }));
    write_config(web("12000") + extra +
                 "  extra2:\n    command: [sleep, \"100000\"]\n    start_timeout: 0s\n");
    kill(daemon, SIGHUP);
    EXPECT_TRUE(WaitFor([&] { return count_state("extra2", "running") == 1; })) << slurp(log);
    EXPECT_FALSE(finished(roll)) << "both came while the roll was still going";
    EXPECT_TRUE(WaitFor([&] { return finished(roll); }, std::chrono::seconds(30)));
    EXPECT_EQ(roll.code, 0) << slurp(roll.out);
}

TEST_F(Rolls, AReloadThatChangesTheRollingPoolRollsItOntoTheNewConfig) {
    start(web("6000"));
    ASSERT_TRUE(WaitFor([&] { return worker0("web")["state"].as_string() == "running"; }));
    auto roll = ctl_bg({"restart", "web"});
    ASSERT_TRUE(WaitFor([&] { return worker0("web")["state"].as_string() == "starting"; }));
    write_config(web("6000") + "    env: {GENERATION: \"2\"}\n");
    auto r = ctl({"reload"});
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    ASSERT_TRUE(WaitFor([&] { return finished(roll); }));
    EXPECT_EQ(roll.code, 1);
    EXPECT_NE(slurp(roll.out).find("superseded by a reload"), std::string::npos) << slurp(roll.out);
    ASSERT_TRUE(WaitFor([&] { return worker0("web")["state"].as_string() == "running"; }));
    const std::string env = slurp("/proc/" + std::to_string(pid0("web")) + "/environ");
    EXPECT_NE(env.find("GENERATION=2"), std::string::npos);
}

TEST_F(Rolls, CancelStopsTheRollAndTheOldWorkerKeepsServing) {
    // Ready the first time; the replacement never is (start_timeout 0: no deadline).
    const std::string mark = (dir / "mark").string();
    start("  web:\n    command: [sh, -c, 'if [ -e " + mark + " ]; then exec " + bin("notifier") +
          " never-ready; else touch " + mark + "; exec " + bin("notifier") +
          " ready-after 0; fi']\n    ready: notify\n    start_timeout: 0s\n    stop_timeout: 5s\n");
    ASSERT_TRUE(WaitFor([&] { return worker0("web")["state"].as_string() == "running"; }));
    const pid_t old = pid0("web");
    auto roll = ctl_bg({"restart", "web"});
    ASSERT_TRUE(WaitFor([&] { return worker0("web")["state"].as_string() == "starting"; }));
    const pid_t successor = pid0("web");
    ASSERT_NE(successor, old);
    auto c = ctl({"restart", "web", "--cancel"});
    EXPECT_EQ(c.code, 0) << c.out << c.err;
    ASSERT_TRUE(WaitFor([&] { return finished(roll); }));
    EXPECT_EQ(roll.code, 1);
    EXPECT_NE(slurp(roll.out).find("cancelled"), std::string::npos) << slurp(roll.out);
    EXPECT_TRUE(WaitFor([&] { return !alive(successor); }));
    EXPECT_TRUE(alive(old));
    EXPECT_EQ(pid0("web"), old);
    EXPECT_EQ(worker0("web")["state"].as_string(), "running");
    EXPECT_EQ(ctl({"health"}).code, 0);
    // Nothing is left rolling: a reload and a new roll are accepted.
    EXPECT_NE(ctl({"restart", "web", "--cancel"}).code, 0);
}

TEST_F(Rolls, WideningAListenerByReloadSaysHowAndChangesNothing) {
    const std::string port = std::to_string(free_port());
    auto pool = [&](const std::string& host) {
        return "  web:\n    command: [sleep, \"100000\"]\n    sockets: [{name: http, listen: "
               "\"tcp://" +
               host + ":" + port + "\"}]\n";
    };
    start(pool("127.0.0.1"));
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 1; }));
    const pid_t before = pid0("web");
    write_config(pool("0.0.0.0"));
    auto r = ctl({"reload"});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("cannot change address in place"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("nothing changed"), std::string::npos) << r.err;
    EXPECT_EQ(pid0("web"), before);
}

}  // namespace

namespace {

// Found by the operator soak: a reload that took `sockets` away from a pool kept its listener
// open in the daemon and passed it to the new workers (LISTEN_FDS=1).
TEST_F(Rolls, AReloadThatRemovesAPoolsSocketsClosesItsListener) {
    const std::string path = (dir / "web.sock").string();
    const std::string out = (dir / "fds").string();
    const std::string cmd =
        "    command: [sh, -c, 'echo \"${LISTEN_FDS:-none}\" >> " + out + "; exec sleep 100000']\n";
    start("  web:\n" + cmd + "    sockets: [{name: s, listen: \"unix:" + path + "\"}]\n");
    ASSERT_TRUE(WaitFor([&] { return slurp(out) == "1\n"; })) << slurp(log);
    write_config("  web:\n" + cmd);
    auto r = ctl({"reload"});
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(WaitFor([&] { return slurp(out) == "1\nnone\n"; })) << slurp(out) << slurp(log);
    // The old worker is gone with its copy, and the daemon kept none: nobody listens.
    ASSERT_TRUE(WaitFor([&] {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        const bool refused = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 &&
                             (errno == ECONNREFUSED || errno == ENOENT);
        ::close(fd);
        return refused;
    })) << "a listener is still open";
}

}  // namespace
