// What cowctl prints and how it exits (issues 11 and 18), against a real daemon or, where the
// order and pace of the replies matter, a stand-in that sends them one by one.
#include <condition_variable>
#include <mutex>
#include <thread>

#include <sys/socket.h>
#include <sys/un.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

// A stand-in for the daemon on a Unix socket: accepts one client, reads its request and
// hands the connection to `script`, so a test can send replies in any order and pace.
class FakeDaemon {
  public:
    using Script = std::function<void(int fd, std::int64_t id)>;

    FakeDaemon(const std::string& path, Script script) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
        ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd_, 4) == 0;
        th_ = std::thread([this, script] {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 30'000) != 1) return;
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) return;
            std::string line;
            char ch;
            while (::read(c, &ch, 1) == 1 && ch != '\n')
                line += ch;
            std::int64_t id = 0;
            boost::system::error_code ec;
            auto v = json::parse(line, ec);
            if (!ec && v.is_object())
                if (auto* i = v.as_object().if_contains("id"); i && i->is_int64())
                    id = i->get_int64();
            script(c, id);
            ::close(c);
        });
    }
    ~FakeDaemon() {
        if (th_.joinable()) th_.join();
        ::close(fd_);
    }
    bool ok() const { return ok_; }

    static void send(int fd, const std::string& line) {
        std::string l = line + "\n";
        (void)::send(fd, l.data(), l.size(), MSG_NOSIGNAL);
    }
    static std::string item(std::int64_t id, const std::string& result) {
        return R"({"v":1,"id":)" + std::to_string(id) + R"(,"ok":true,"more":true,"result":)" +
               result + "}";
    }
    static std::string final(std::int64_t id, const std::string& result) {
        return R"({"v":1,"id":)" + std::to_string(id) + R"(,"ok":true,"result":)" + result + "}";
    }

  private:
    int fd_ = -1;
    bool ok_ = false;
    std::thread th_;
};

// A one-shot gate between the test and the fake daemon's thread.
struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
    void release() {
        std::lock_guard l(mu);
        open = true;
        cv.notify_all();
    }
    bool wait(std::chrono::seconds d) {
        std::unique_lock l(mu);
        return cv.wait_for(l, d, [&] { return open; });
    }
};

// cowctl with stdout on a pipe the test reads while it runs.
struct LiveCtl {
    pid_t pid = -1;
    int out = -1;
    std::string text;
    LiveCtl(const std::vector<std::string>& argv) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) return;
        pid = spawn_with(argv, p[1], -1);
        ::close(p[1]);
        out = p[0];
    }
    ~LiveCtl() {
        if (out >= 0) ::close(out);
        if (pid > 0 && waitpid(pid, nullptr, WNOHANG) == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
    // Reads until stdout holds `needle` (true) or the deadline passes.
    bool read_until(const std::string& needle, std::chrono::seconds d) {
        return WaitFor([&] { return pump(50) || text.find(needle) != std::string::npos; }, d) &&
               text.find(needle) != std::string::npos;
    }
    // Reads what is there; true at end of file.
    bool pump(int ms) {
        pollfd p{out, POLLIN, 0};
        if (::poll(&p, 1, ms) <= 0) return false;
        char buf[4096];
        ssize_t n = ::read(out, buf, sizeof buf);
        if (n <= 0) return true;
        text.append(buf, static_cast<std::size_t>(n));
        return false;
    }
    int finish(std::chrono::seconds d) {
        WaitFor([&] { return pump(50); }, d);
        int st = 0;
        if (!WaitFor([&] { return waitpid(pid, &st, WNOHANG) == pid; }, d)) return -1;
        pid = -1;
        return decode(st);
    }
};

const std::string kPlan =
    R"({"dry_run":false,"pools":[{"name":"web","change":"changed","keys":["env"],)"
    R"("action":"rolling restart"},{"name":"idle","change":"unchanged","keys":[],)"
    R"("action":"none"}],"daemon_changed":[]})";
const std::string kStep = R"({"worker":"web.0","old_pid":100,"new_pid":200,"done":1,"total":1})";

class CtlOutput : public DaemonFixture {};

TEST_F(CtlOutput, TheReloadPlanIsPrintedAsSoonAsItArrives) {
    Gate applied;
    FakeDaemon fake(socket, [&](int fd, std::int64_t id) {
        FakeDaemon::send(fd, FakeDaemon::item(id, kPlan));
        // The "daemon" applies the plan only once cowctl has shown it.
        if (!applied.wait(std::chrono::seconds(20))) return;
        FakeDaemon::send(fd, FakeDaemon::item(id, kStep));
        FakeDaemon::send(fd, FakeDaemon::final(id, kPlan));
    });
    ASSERT_TRUE(fake.ok());
    LiveCtl ctl({bin("cowctl"), "--socket", socket, "reload"});
    const bool shown = ctl.read_until("rolling restart", std::chrono::seconds(20));
    applied.release();
    ASSERT_TRUE(shown) << "the plan was not printed before the reload went on: " << ctl.text;
    EXPECT_EQ(ctl.finish(std::chrono::seconds(20)), 0);
    const std::string& out = ctl.text;
    const auto plan = out.find("reload plan (applying it now):\n");
    const auto step = out.find("web.0 replaced: pid 100 -> 200 (1/1)\n");
    const auto done = out.find("reload applied\n");
    ASSERT_NE(plan, std::string::npos) << out;
    ASSERT_NE(step, std::string::npos) << out;
    ASSERT_NE(done, std::string::npos) << out;
    EXPECT_LT(plan, step) << out;
    EXPECT_LT(step, done) << out;
    EXPECT_EQ(out.find("rolling restart"), out.rfind("rolling restart"))
        << "plan shown once: " << out;
}

TEST_F(CtlOutput, AReloadPlanItemIsNotPartOfTheJsonDocument) {
    FakeDaemon fake(socket, [&](int fd, std::int64_t id) {
        FakeDaemon::send(fd, FakeDaemon::item(id, kPlan));
        FakeDaemon::send(fd, FakeDaemon::item(id, kStep));
        FakeDaemon::send(fd, FakeDaemon::final(id, kPlan));
    });
    ASSERT_TRUE(fake.ok());
    auto r = run({bin("cowctl"), "--socket", socket, "--json", "reload", "--progress"});
    EXPECT_EQ(r.code, 0) << r.err;
    boost::system::error_code ec;
    auto v = json::parse(r.out, ec);
    ASSERT_FALSE(ec) << "stdout is not one JSON document: " << r.out;
    EXPECT_EQ(v, json::parse(kPlan));
    EXPECT_EQ(r.err, kPlan + "\n" + kStep + "\n") << "the items, as JSON lines, on stderr";
}

TEST_F(CtlOutput, AFinalPlanWithoutAPlanItemIsStillShown) {
    FakeDaemon fake(socket, [&](int fd, std::int64_t id) {
        FakeDaemon::send(fd, FakeDaemon::final(id, kPlan));
    });
    ASSERT_TRUE(fake.ok());
    auto r = run({bin("cowctl"), "--socket", socket, "reload"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("reload applied:\n", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("rolling restart"), std::string::npos) << r.out;
}

TEST_F(CtlOutput, ATimeoutWhileTheDaemonWorksExitsFour) {
    Gate done;
    FakeDaemon fake(socket, [&](int, std::int64_t) { done.wait(std::chrono::seconds(30)); });
    ASSERT_TRUE(fake.ok());
    auto r = run({bin("cowctl"), "--socket", socket, "--timeout", "1", "status"});
    done.release();
    EXPECT_EQ(r.code, 4) << r.err;
    EXPECT_NE(r.err.find("no reply to \"status\" within 1s"), std::string::npos) << r.err;
}

TEST_F(CtlOutput, StartTimingOutOnARealDaemonExitsFourNotThree) {
    start("  never:\n    command: [\"" + bin("notifier") +
          "\", never-ready]\n    ready: notify\n    autostart: false\n    start_timeout: 1h\n");
    auto r = ctl({"--timeout", "1", "start", "never"});
    EXPECT_EQ(r.code, 4) << r.err;
    EXPECT_NE(r.err.find("not cancelled"), std::string::npos) << r.err;
    r = ctl({"--json", "--timeout", "1", "start", "never"});
    EXPECT_EQ(r.code, 4) << r.err;
    boost::system::error_code ec;
    auto v = json::parse(r.out, ec);
    ASSERT_FALSE(ec) << r.out;
    EXPECT_EQ(v.at("error").at("code").as_string(), "client_timeout");
    EXPECT_EQ(count_state("never", "starting"), 1) << "the daemon goes on with the start";
}

TEST_F(CtlOutput, InvisibleCharactersOfEchoedInputAreEscaped) {
    start(
        "  web:\n    command: [sleep, \"100000\"]\n"
        "  typo:\n    command: [\"/nonexistent\xe2\x80\x8b/x\"]\n    start_timeout: 100ms\n"
        "    backoff: {initial: 1h, max: 1h}\n");
    // A pool name with a zero-width space, another with a terminal escape.
    auto r = ctl({"status", "web\xe2\x80\x8b"});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("\"web\\u200b\""), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("\xe2\x80\x8b"), std::string::npos) << "printed raw: " << r.err;
    r = ctl({"stop", "web\x1b[2J"});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("\"web\\x1b[2J\""), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << "printed raw: " << r.err;
    // The same character in a command path, echoed back in a worker's error.
    ASSERT_TRUE(WaitFor([&] {
        return ctl({"status", "typo"}).out.find("nonexistent") != std::string::npos;
    }));
    r = ctl({"status", "typo"});
    EXPECT_NE(r.out.find("/nonexistent\\u200b/x"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("\xe2\x80\x8b"), std::string::npos) << "printed raw: " << r.out;
    // --json keeps the data as it is: JSON has its own escaping.
    auto v = ctl_json({"status", "typo"});
    const auto& err = v.at("pools").at(0).at("workers").at(0).at("error");
    ASSERT_TRUE(err.is_string()) << json::serialize(v);
    EXPECT_NE(std::string(err.as_string()).find("\xe2\x80\x8b"), std::string::npos);
}

TEST_F(CtlOutput, MemDeepExplainsItsColumns) {
    if (geteuid() != 0) GTEST_SKIP() << "mem --deep reads /proc/kpagecount, which needs root";
    start("  tick:\n    command: [sleep, \"100000\"]\n    workers: 2\n    start_timeout: 100ms\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("tick", "running") == 2; }));
    auto r = ctl({"mem", "tick", "--deep"});
    ASSERT_EQ(r.code, 0) << r.err;
    for (const char* column : {"RESIDENT", "PRIVATE", "POOL_SHARED", "OUTSIDE_SHARED",
                               "WITH_MASTER", "WITH_SIBLINGS", "SMAPS_DIFF"})
        EXPECT_NE(r.out.find(column), std::string::npos) << column << "\n" << r.out;
    EXPECT_NE(r.out.find("RESIDENT = PRIVATE (mapped once) + POOL_SHARED"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("can exceed POOL_SHARED"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("group N ="), std::string::npos) << r.out;
}

}  // namespace

namespace {

TEST(CtlHelp, SignalSaysItGoesToTheMainProcess) {
    auto r = run({bin("cowctl"), "--help"});
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out.find("process group"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("signal to each worker's main process"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("exit 4"), std::string::npos) << "--timeout documents its exit code";
    EXPECT_NE(r.out.find("default: 600 for start"), std::string::npos) << "and its defaults";
}

}  // namespace
