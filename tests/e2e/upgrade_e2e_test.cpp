// cowctl upgrade: a new daemon image in place. Every worker keeps running and serving, no line
// of output is lost or repeated, restart counts, backoff deadlines and max_restarts windows
// carry over, and every way an upgrade can fail leaves the old image running.
#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// A sanitizer's image takes a second or more to start, not milliseconds, and its RSS says
// nothing about what it holds (quarantine, shadow memory): there ten upgrades prove the
// handover, and the Release tier makes the hundred and judges the RSS.
constexpr int kUpgrades = 10;
constexpr bool kSanitized = true;
#else
constexpr int kUpgrades = 100;
constexpr bool kSanitized = false;
#endif

class Upgrade : public DaemonFixture {
  protected:
    std::string logdir() const { return (dir / "logs").string(); }

    json::object daemon_info() {
        auto v = ctl_json({"status"});
        return v.is_object() ? v.as_object()["daemon"].as_object() : json::object{};
    }

    // Each worker's identity and FSM as status shows them, less what moves with time.
    std::map<std::string, std::string> slots() {
        std::map<std::string, std::string> out;
        for (auto& w : workers()) {
            w.erase("uptime_ms");
            w.erase("state_ms");
            out[std::string(w["name"].as_string())] = json::serialize(w);
        }
        return out;
    }

    // The daemon's fds, less the log files of file sinks: an image opens those at its first
    // line for them, so they come and go with the timing of the flood, not with upgrades.
    int fd_count(pid_t pid) const {
        int n = 0;
        for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
            std::error_code ec;
            auto target = fs::read_symlink(e.path(), ec).string();
            if (!ec && target.rfind(logdir(), 0) == 0) continue;
            ++n;
        }
        return n;
    }

    // The daemon's resident set in kB (VmRSS).
    static long rss_kb(pid_t pid) {
        std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/status"));
        for (std::string line; std::getline(in, line);)
            if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
        return -1;
    }

    // A flood stream's file: its sequence numbers, each once and in order?
    struct Seqs {
        long count = 0, broken = 0;
    };
    static Seqs seqs(const std::string& path, char tag) {
        Seqs s;
        std::istringstream in(slurp(path));
        long next = 0;
        for (std::string l; std::getline(in, l);) {
            if (l.size() < 3 || l[0] != tag) continue;
            long seq = std::atol(l.c_str() + 2);
            if (seq != next) ++s.broken;
            next = seq + 1;
            ++s.count;
        }
        return s;
    }

    RunResult upgrade(const std::string& binary = "") {
        std::vector<std::string> args{"upgrade"};
        if (!binary.empty()) args.insert(args.end(), {"--binary", binary});
        return ctl(args, std::chrono::seconds(60));
    }
};

std::string web_pool(int port) {
    return "  web:\n    command: [\"" + bin("cow-http") +
           "\"]\n    workers: 8\n    ready: notify\n    start_timeout: 5s\n"
           "    sockets: [{name: http, listen: \"tcp://127.0.0.1:" +
           std::to_string(port) + "\"}]\n";
}

TEST_F(Upgrade, HundredUpgradesUnderLoadKeepEveryWorkerLineAndCount) {
    const int port = free_port();
    const std::string b = (dir / "cowherd-b").string();
    fs::copy_file(bin("cowherd"), b);
    const long lines = 300000;  // 30 s at 10,000 a second: it outlasts the upgrades
    start(web_pool(port) + "  flood:\n    command: [\"" + bin("flood") + "\", \"" +
              std::to_string(lines) +
              "\", --every-ms, \"1\", --batch, \"10\"]\n    restart: never\n"
              "    stdout: file\n    stderr: file\n"
              // Fails at once, again and again: its restarts, its backoff deadline and its
              // max_restarts window must survive every upgrade for it to go fatal on time.
              "  crashy:\n    command: [\"" +
              bin("exit_with") +
              "\", \"3\"]\n    backoff: {initial: 1500ms, max: 1500ms}\n"
              "    max_restarts: {count: 3, within: 1h}\n",
          "  log_dir: " + logdir() + "\n");
    ASSERT_TRUE(
        WaitFor([&] { return count_state("web", "running") == 8; }, std::chrono::seconds(20)));
    const pid_t pid = static_cast<pid_t>(as_int(daemon_info()["pid"]));
    ASSERT_EQ(pid, daemon);
    auto before = slots();
    // The baseline after one upgrade: an image that has taken a state up, like the last.
    ASSERT_EQ(upgrade().code, 0);
    // Its fds, less the connection of a client that has just left (closed a moment later).
    int fds0 = fd_count(daemon);
    WaitFor(
        [&] {
            fds0 = std::min(fds0, fd_count(daemon));
            return false;
        },
        std::chrono::milliseconds(300));
    // The resident set of a fresh image moves by a few percent with what it touched first,
    // so each end is the median of ten upgrades.
    std::vector<long> rss{rss_kb(daemon)};

    std::string report;
    int upgrades = 1, failed = 0;
    std::string first_error;
    int fds = 0;
    const int load = under_load(
        port, 25,
        [&] {
            // Clients in flight through every upgrade: each gets its answer.
            std::atomic<bool> done{false};
            std::atomic<int> asked{0}, unanswered{0};
            std::thread poller([&] {
                while (!done) {
                    ++asked;
                    if (ctl({"status", "--json"}).code != 0) ++unanswered;
                }
            });
            for (int i = 0; i < kUpgrades - 1; ++i) {
                auto r = upgrade(i % 2 == 0 ? b : bin("cowherd"));
                if (r.code == 0) {
                    ++upgrades;
                    rss.push_back(rss_kb(daemon));
                } else if (failed++ == 0) {
                    first_error = r.out + r.err;
                }
            }
            // Like for like: a fresh image after upgrade 1 and after upgrade 100, the flood
            // going on through both; what the images did in between must not show.
            done = true;
            poller.join();
            // A client's connection is closed by the daemon a moment after the client's: a
            // count over the baseline must come back to it, a leak never would.
            WaitFor([&] { return (fds = fd_count(daemon)) == fds0; }, std::chrono::seconds(5));
            EXPECT_GT(asked.load(), 20);
            EXPECT_EQ(unanswered.load(), 0) << "of " << asked.load() << " status calls";
        },
        report);
    EXPECT_EQ(failed, 0) << first_error;
    EXPECT_EQ(load, 0) << "requests failed during the upgrades:\n" << report;

    auto info = daemon_info();
    EXPECT_EQ(as_int(info["pid"]), daemon);
    EXPECT_EQ(as_int(info["upgrades"]), upgrades);
    EXPECT_EQ(as_int(info["upgrade_failures"]), 0);
    // Every web worker is the process it was: same pid, generation and restarts.
    auto after = slots();
    for (int i = 0; i < 8; ++i) {
        const std::string name = "web." + std::to_string(i);
        EXPECT_EQ(before[name], after[name]) << name;
    }
    // crashy went fatal after exactly 3 restarts, 1.5 s apart, through all those upgrades.
    ASSERT_TRUE(
        WaitFor([&] { return count_state("crashy", "fatal") == 1; }, std::chrono::seconds(30)));
    EXPECT_EQ(as_int(workers("crashy")[0]["restarts"]), 3);

    // Every line the flood wrote, once and in order, across every image.
    ASSERT_TRUE(
        WaitFor([&] { return count_state("flood", "exited") == 1; }, std::chrono::seconds(120)));
    ASSERT_TRUE(WaitFor(
        [&] {
            return seqs(logdir() + "/flood.out", 'o').count +
                       seqs(logdir() + "/flood.err", 'e').count ==
                   lines;
        },
        std::chrono::seconds(30)));
    auto out = seqs(logdir() + "/flood.out", 'o'), err = seqs(logdir() + "/flood.err", 'e');
    EXPECT_EQ(out.count + err.count, lines);
    EXPECT_EQ(out.broken, 0);
    EXPECT_EQ(err.broken, 0);

    EXPECT_EQ(fds, fds0);
    if (!kSanitized) {
        ASSERT_GE(rss.size(), 20u);
        auto median = [](std::vector<long> v) {
            std::sort(v.begin(), v.end());
            return v[v.size() / 2];
        };
        const long first = median({rss.begin(), rss.begin() + 10});
        const long last = median({rss.end() - 10, rss.end()});
        EXPECT_LE(std::abs(last - first), first / 50) << first << " kB then " << last << " kB";
        std::fprintf(stderr,
                     "daemon RSS, median of 10 fresh images: %ld kB at first, %ld kB last\n", first,
                     last);
    }
    EXPECT_EQ(log_count("sending TERM"), 0);
}

TEST_F(Upgrade, ARollingRestartGoesOnThroughUpgrades) {
    const int port = free_port();
    // Each replacement takes 1.5 s to be ready: four of them, one at a time, span the upgrades.
    start("  web:\n    command: [\"" + bin("cow-http") +
          "\", --startup-delay, \"1500\"]\n    workers: 4\n    ready: notify\n"
          "    start_timeout: 10s\n    sockets: [{name: http, listen: \"tcp://127.0.0.1:" +
          std::to_string(port) + "\"}]\n");
    ASSERT_TRUE(
        WaitFor([&] { return count_state("web", "running") == 4; }, std::chrono::seconds(20)));
    std::set<std::int64_t> old;
    for (auto& w : workers("web"))
        old.insert(as_int(w["pid"]));
    std::string report;
    int upgrades = 0;
    const int load = under_load(
        port, 8,
        [&] {
            // The operator's cowctl waits for the roll; the first upgrade cuts it off (it is
            // told so), and the roll goes on in each new image.
            pid_t restart =
                spawn_with({bin("cowctl"), "--socket", socket, "restart", "web"}, -1, -1);
            ASSERT_GT(restart, 0);
            ASSERT_TRUE(WaitFor([&] { return log_count("rolling restart of 4 workers") == 1; }));
            // Upgrades while the roll goes on, until it is over.
            ASSERT_TRUE(WaitFor(
                [&] {
                    if (upgrade().code == 0) ++upgrades;
                    int replaced = 0;
                    for (auto& w : workers("web"))
                        replaced += w["state"].as_string() == "running" &&
                                    !old.count(as_int(w["pid"])) && !w.contains("replacing_pid");
                    return replaced == 4;
                },
                std::chrono::seconds(30)));
        },
        report);
    EXPECT_EQ(load, 0) << "requests failed during the roll and the upgrades:\n" << report;
    EXPECT_GE(upgrades, 2);
    for (auto& w : workers("web")) {
        EXPECT_EQ(as_int(w["generation"]), 2) << w["name"];
        EXPECT_EQ(as_int(w["restarts"]), 0) << w["name"];
    }
    for (auto pid : old)
        EXPECT_FALSE(alive(static_cast<pid_t>(pid))) << "old pid " << pid;
    EXPECT_EQ(log_count("rolling restart done, 4 of 4 replaced"), 1);
    EXPECT_GE(log_count("rolling restart taken over"), 1);
}

TEST_F(Upgrade, EveryFailureLeavesTheRunningImageAndItsWorkers) {
    ::setenv("COWHERD_TEST_UPGRADE_CRASH", (dir / "crash").c_str(), 1);
    start("  w:\n    command: [\"sleep\", \"1000\"]\n    workers: 2\n    start_timeout: 50ms\n");
    ::unsetenv("COWHERD_TEST_UPGRADE_CRASH");
    ASSERT_TRUE(WaitFor([&] { return count_state("w", "running") == 2; }));
    auto before = slots();

    auto r = upgrade((dir / "missing").string());
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("No such file or directory"), std::string::npos) << r.err;

    const std::string script = (dir / "refuses.sh").string();
    {
        std::ofstream f(script);
        f << "#!/bin/sh\necho 'not this state'\nexit 1\n";
    }
    fs::permissions(script, fs::perms::owner_all);
    r = upgrade(script);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("exited 1: not this state"), std::string::npos) << r.err;

    // A binary that says yes to anything is no cowherd.
    const std::string yes = (dir / "yes.sh").string();
    {
        std::ofstream f(yes);
        f << "#!/bin/sh\nexit 0\n";
    }
    fs::permissions(yes, fs::perms::owner_all);
    r = upgrade(yes);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("does not speak cowherd's upgrade check"), std::string::npos) << r.err;
    EXPECT_EQ(as_int(daemon_info()["upgrade_failures"]), 0) << "refused before any exec";

    // A new image that crashes while taking the state up: the old one is executed again.
    { std::ofstream f(dir / "crash"); }
    r = upgrade();
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("died of a signal while taking the state up"), std::string::npos) << r.err;
    auto info = daemon_info();
    EXPECT_EQ(as_int(info["pid"]), daemon);
    EXPECT_EQ(as_int(info["upgrade_failures"]), 1);
    EXPECT_EQ(slots(), before);

    // And the next upgrade, with nothing in the way, goes through.
    EXPECT_EQ(upgrade().code, 0);
    EXPECT_EQ(as_int(daemon_info()["upgrades"]), 1);
    EXPECT_EQ(slots(), before);
}

TEST_F(Upgrade, AStateOfAnUnknownMajorVersionIsRefusedByTheCheck) {
    ::setenv("COWHERD_TEST_STATE_MAJOR", "2", 1);
    start("  w:\n    command: [\"sleep\", \"1000\"]\n    start_timeout: 50ms\n");
    ::unsetenv("COWHERD_TEST_STATE_MAJOR");
    ASSERT_TRUE(WaitFor([&] { return count_state("w", "running") == 1; }));
    auto before = slots();
    auto r = upgrade();
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("the state is of format version 2"), std::string::npos) << r.err;
    EXPECT_EQ(slots(), before);
}

TEST_F(Upgrade, AWorkerThatDiesDuringTheExecIsReapedAndCountedOnce) {
    ::setenv("COWHERD_TEST_UPGRADE_KILL", "victim.0", 1);
    start(
        "  victim:\n    command: [\"sleep\", \"1000\"]\n    start_timeout: 50ms\n"
        "    backoff: {initial: 50ms}\n");
    ::unsetenv("COWHERD_TEST_UPGRADE_KILL");
    ASSERT_TRUE(WaitFor([&] { return count_state("victim", "running") == 1; }));
    const auto old_pid = as_int(workers("victim")[0]["pid"]);
    ASSERT_EQ(upgrade().code, 0);
    ASSERT_TRUE(WaitFor([&] {
        auto w = workers("victim");
        return w.size() == 1 && w[0]["state"].as_string() == "running" &&
               as_int(w[0]["pid"]) != old_pid;
    }));
    auto w = workers("victim")[0];
    EXPECT_EQ(as_int(w["restarts"]), 1);
    auto& last = w["last_exit"].as_object();
    EXPECT_EQ(as_int(last["pid"]), old_pid);
    EXPECT_EQ(as_int(last["signal"]), SIGKILL);
    EXPECT_EQ(last["cause"].as_string(), "killed_externally");
    EXPECT_FALSE(alive(static_cast<pid_t>(old_pid)));
    EXPECT_FALSE(zombie(static_cast<pid_t>(old_pid)));
}

TEST_F(Upgrade, ALogsFollowerReconnectsAndMissesNoLine) {
    // 500 a second for 6 s: the follower sees upgrades mid-stream, and even a sanitizer's cowctl
    // keeps up (a follower that does not is told of skipped lines, which is not this test's).
    const long lines = 3000;
    start("  flood:\n    command: [\"" + bin("flood") + "\", \"" + std::to_string(lines) +
          "\", --every-ms, \"2\"]\n    restart: never\n"
          // Room for every line, however long an image takes to start (a sanitizer's: seconds).
          "    log_ring: 1MiB\n"
          // Keeps the daemon up once the flood is over.
          "  keep:\n    command: [\"sleep\", \"1000\"]\n");
    const std::string out = (dir / "follow.jsonl").string();
    int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_t follower = spawn_with(
        {bin("cowctl"), "--socket", socket, "--json", "logs", "-f", "-n", "0", "flood"}, fd, fd);
    close(fd);
    ASSERT_GT(follower, 0);
    ASSERT_TRUE(WaitFor([&] { return !slurp(out).empty(); }));
    for (int i = 0; i < 5; ++i)
        ASSERT_EQ(upgrade().code, 0) << i;
    ASSERT_TRUE(
        WaitFor([&] { return count_state("flood", "exited") == 1; }, std::chrono::seconds(30)));
    // Every line from the follower's first on, once and in order, on each stream.
    std::map<std::string, long> next;
    long seen = 0, broken = 0, skipped = 0;
    auto check = [&] {
        next.clear();
        seen = broken = skipped = 0;
        std::istringstream in(slurp(out));
        for (std::string l; std::getline(in, l);) {
            boost::system::error_code ec;
            auto v = json::parse(l, ec);
            if (ec || !v.is_object()) continue;
            auto& o = v.as_object();
            if (o.contains("skipped")) ++skipped;
            if (!o.contains("line")) continue;
            std::string text(o["line"].as_string());
            const std::string stream(o["stream"].as_string());
            const long seq = std::atol(text.c_str() + 2);
            auto it = next.find(stream);
            if (it != next.end() && seq != it->second) ++broken;
            next[stream] = seq + 1;
            ++seen;
        }
        return next["stdout"] == lines / 2 && next["stderr"] == lines / 2;
    };
    EXPECT_TRUE(WaitFor(check, std::chrono::seconds(10))) << seen << " lines";
    EXPECT_EQ(broken, 0);
    EXPECT_EQ(skipped, 0);
    EXPECT_GT(seen, lines / 4) << "the follower saw the flood go through the upgrades";
    ::kill(follower, SIGTERM);
}

TEST_F(Upgrade, Sigusr2UpgradesToTheBinaryTheDaemonStartedFrom) {
    start("  w:\n    command: [\"sleep\", \"1000\"]\n    start_timeout: 50ms\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("w", "running") == 1; }));
    auto before = slots();
    ::kill(daemon, SIGUSR2);
    ASSERT_TRUE(WaitFor([&] {
        auto r = ctl({"status", "--json"});
        return r.code == 0 && r.out.find("\"upgrades\":1") != std::string::npos;
    }));
    EXPECT_EQ(slots(), before);
}

class UpgradeAsPid1 : public Upgrade {
  protected:
    void SetUp() override {
        Upgrade::SetUp();
        if (run({"unshare", "-p", "-f", "--mount-proc", "true"}).code != 0)
            GTEST_SKIP() << "no pid namespaces here (unshare -p failed)";
        launcher = {"unshare", "-p", "-f", "--mount-proc"};
    }
};

TEST_F(UpgradeAsPid1, ThePid1OfANamespaceUpgradesInPlace) {
    start("  w:\n    command: [\"sleep\", \"1000\"]\n    workers: 3\n    start_timeout: 50ms\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("w", "running") == 3; }));
    EXPECT_EQ(as_int(daemon_info()["pid"]), 1);
    auto before = slots();
    for (int i = 0; i < 5; ++i)
        ASSERT_EQ(upgrade().code, 0) << i;
    auto info = daemon_info();
    EXPECT_EQ(as_int(info["pid"]), 1);
    EXPECT_EQ(as_int(info["upgrades"]), 5);
    EXPECT_EQ(slots(), before);
    // And it still shuts down in order, as PID 1 must.
    EXPECT_EQ(ctl({"shutdown"}).code, 0);
    ASSERT_TRUE(wait_exit(std::chrono::seconds(15)));
    EXPECT_EQ(exit_status, 0);
}

}  // namespace
