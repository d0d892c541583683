// `cowctl top` on a real terminal: a private tmux server runs it against a real daemon, the
// tests type with send-keys and read the screen with capture-pane, polling with deadlines.
#include <sstream>

#include <grp.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> words(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> out;
    for (std::string w; in >> w;)
        out.push_back(w);
    return out;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::istringstream in(text);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);)
        out.push_back(l);
    return out;
}

// The row of `worker` on the screen, as words without the selection mark: WORKER, STATE, PID,
// UPTIME, RESTARTS, ...; empty when it is not shown.
std::vector<std::string> row(const std::string& screen, const std::string& worker) {
    for (const auto& l : lines_of(screen)) {
        auto w = words(l);
        if (!w.empty() && w.front() == ">") w.erase(w.begin());
        if (!w.empty() && w.front() == worker) return w;
    }
    return {};
}

// The line number of `worker`'s row, or -1.
int row_line(const std::string& screen, const std::string& worker) {
    auto ls = lines_of(screen);
    for (std::size_t i = 0; i < ls.size(); ++i) {
        auto w = words(ls[i]);
        if (!w.empty() && w.front() == ">") w.erase(w.begin());
        if (!w.empty() && w.front() == worker) return static_cast<int>(i);
    }
    return -1;
}

bool selected(const std::string& screen, const std::string& worker) {
    for (const auto& l : lines_of(screen)) {
        auto w = words(l);
        if (w.size() > 1 && w[0] == ">" && w[1] == worker) return true;
    }
    return false;
}

bool has(const std::string& screen, const std::string& text) {
    return screen.find(text) != std::string::npos;
}

class Top : public DaemonFixture {
  protected:
    std::string server;  // the private tmux server's name (tmux -L)
    bool tmux_started = false;

    void SetUp() override {
        DaemonFixture::SetUp();
        if (run({"tmux", "-V"}).code != 0) GTEST_SKIP() << "tmux is not installed";
        static int n = 0;
        server = "cowtop-" + std::to_string(getpid()) + "-" + std::to_string(++n);
    }

    void TearDown() override {
        if (tmux_started) {
            if (HasFailure()) std::fprintf(stderr, "---- screen ----\n%s\n", screen().c_str());
            tmux({"kill-server"});
            // kill-server leaves its socket behind.
            const char* tmpdir = std::getenv("TMUX_TMPDIR");
            std::error_code ec;
            fs::remove(fs::path(tmpdir && tmpdir[0] ? tmpdir : "/tmp") /
                           ("tmux-" + std::to_string(geteuid())) / server,
                       ec);
        }
        DaemonFixture::TearDown();
    }

    RunResult tmux(const std::vector<std::string>& args) {
        std::vector<std::string> argv = {"tmux", "-L", server, "-f", "/dev/null"};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv, 10s);
    }

    // `cowctl top` in a 200x50 terminal, refreshing every 0.2 s, run through `prefix` (a
    // setpriv command line, say). The pane stays when cowctl exits, with what it printed.
    void open_top(const std::string& prefix = "") {
        const std::string cmd =
            prefix + bin("cowctl") + " --socket " + socket + " top --interval 0.2";
        tmux_started = true;
        auto r = tmux({"new-session", "-d", "-s", "top", "-x", "200", "-y", "50", ";", "set-option",
                       "-g", "remain-on-exit", "on", ";", "respawn-pane", "-k", "-t", "top", cmd});
        ASSERT_EQ(r.code, 0) << r.out << r.err;
    }

    std::string screen() { return tmux({"capture-pane", "-p", "-t", "top"}).out; }

    void keys(const std::string& k) {
        auto r = tmux({"send-keys", "-t", "top", k});
        ASSERT_EQ(r.code, 0) << r.err;
    }

    bool screen_shows(const std::function<bool(const std::string&)>& pred,
                      std::chrono::milliseconds deadline = 10s) {
        return WaitFor([&] { return pred(screen()); }, deadline, 20ms);
    }

    bool screen_has(const std::string& text, std::chrono::milliseconds deadline = 10s) {
        return screen_shows([&](const std::string& s) { return has(s, text); }, deadline);
    }

    // Every worker of `names` shown running with the pid the daemon reports.
    bool all_running(const std::vector<std::string>& names) {
        std::map<std::string, std::string> pid;
        for (auto& w : workers())
            pid[std::string(w["name"].as_string())] = std::to_string(as_int(w["pid"]));
        return screen_shows([&](const std::string& s) {
            for (const auto& n : names) {
                auto r = row(s, n);
                if (r.size() < 5 || r[1] != "running" || r[2] != pid[n]) return false;
            }
            return true;
        });
    }

    std::int64_t pid_of(const std::string& worker) {
        for (auto& w : workers())
            if (w["name"].as_string() == worker) return as_int(w["pid"]);
        return -1;
    }

    // How many exits of `worker` cowherd caused for a restart.
    int restarts_requested(const std::string& worker) {
        auto v = ctl_json({"history", worker});
        int n = 0;
        for (auto& w : v.as_object()["workers"].as_array())
            for (auto& e : w.as_object()["exits"].as_array())
                n += e.as_object()["detail"] == "restart";
        return n;
    }
};

std::string tickers(int n) {
    return "  tick:\n    command: [\"" + bin("cow-ticker") +
           "\", \"1\"]\n    workers: " + std::to_string(n) + "\n    start_timeout: 0s\n";
}

TEST_F(Top, ListsTheWorkersOfARunningDaemon) {
    start(tickers(3));
    open_top();
    ASSERT_TRUE(all_running({"tick.0", "tick.1", "tick.2"}));
    const std::string s = screen();
    EXPECT_TRUE(has(s, "cowherd " + socket)) << s;
    EXPECT_TRUE(has(s, "1 pools, 3 workers")) << s;
    EXPECT_TRUE(has(s, "pool tick  3/3 running")) << s;
    for (const char* title : {"WORKER", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "CPU%",
                              "RSS", "PSS", "USS", "COW_LOST", "TREND"})
        EXPECT_TRUE(has(s, title)) << title << "\n" << s;
    EXPECT_TRUE(selected(s, "tick.0")) << "the first worker is selected\n" << s;
    EXPECT_EQ(row(s, "tick.1")[4], "0") << "no restarts yet\n" << s;
    EXPECT_TRUE(has(s, "q quit")) << "the key hints\n" << s;
}

TEST_F(Top, AKilledWorkerShowsAsARestart) {
    start(tickers(3));
    open_top();
    ASSERT_TRUE(all_running({"tick.0", "tick.1", "tick.2"}));
    const auto old = pid_of("tick.1");
    ASSERT_GT(old, 0);
    ASSERT_EQ(kill(static_cast<pid_t>(old), SIGKILL), 0);
    // The daemon restarts it at once; two refreshes of 0.2 s later the screen says so.
    std::string now;
    ASSERT_TRUE(screen_shows(
        [&](const std::string& s) {
            auto r = row(s, "tick.1");
            if (r.size() < 6 || r[4] != "1" || r[2] == std::to_string(old)) return false;
            now = r[2];
            return true;
        },
        5s));
    EXPECT_EQ(now, std::to_string(pid_of("tick.1"))) << "the new pid";
    const std::string s = screen();
    EXPECT_TRUE(has(lines_of(s)[static_cast<std::size_t>(row_line(s, "tick.1"))], "killed KILL"))
        << "LAST EXIT\n"
        << s;
    EXPECT_EQ(row(s, "tick.0")[4], "0") << s;
    EXPECT_EQ(row(s, "tick.2")[4], "0") << s;
}

TEST_F(Top, SortsByUss) {
    // Three workers holding 8, 64 and 32 MiB of their own.
    start(
        "  hog:\n    command: [/bin/sh, -c, \"case $COWHERD_WORKER in 0) m=8;; 1) m=64;; *) "
        "m=32;; esac; exec " +
            bin("memhog") + " $m 0 0\"]\n    workers: 3\n    start_timeout: 0s\n",
        "  memory:\n    sample_every: 200ms\n");
    open_top();
    ASSERT_TRUE(all_running({"hog.0", "hog.1", "hog.2"}));
    EXPECT_TRUE(has(screen(), "pool hog")) << "name order groups workers under their pool";
    keys("u");
    // Biggest first, once the sampler has seen them all; one list, no pool lines.
    ASSERT_TRUE(screen_shows(
        [](const std::string& s) {
            const int a = row_line(s, "hog.1"), b = row_line(s, "hog.2"), c = row_line(s, "hog.0");
            return a >= 0 && b >= 0 && c >= 0 && a < b && b < c && has(s, "sort: uss");
        },
        20s));
    const std::string s = screen();
    EXPECT_FALSE(has(s, "pool hog")) << s;
    EXPECT_TRUE(has(lines_of(s)[static_cast<std::size_t>(row_line(s, "hog.1"))], "MiB")) << s;
    // S reverses it.
    keys("S");
    EXPECT_TRUE(screen_shows([](const std::string& sc) {
        const int a = row_line(sc, "hog.0"), b = row_line(sc, "hog.2"), c = row_line(sc, "hog.1");
        return a >= 0 && b >= 0 && c >= 0 && a < b && b < c;
    }));
}

TEST_F(Top, ARestartKeyRestartsTheSelectedWorkerOnceConfirmed) {
    start(tickers(3));
    open_top();
    ASSERT_TRUE(all_running({"tick.0", "tick.1", "tick.2"}));
    const auto p0 = pid_of("tick.0"), p1 = pid_of("tick.1"), p2 = pid_of("tick.2");
    keys("j");
    ASSERT_TRUE(screen_shows([](const std::string& s) { return selected(s, "tick.1"); }));

    // Asked, and refused: nothing happens.
    keys("r");
    ASSERT_TRUE(screen_has("restart tick.1? [y/N]"));
    keys("n");
    ASSERT_TRUE(screen_has("restart tick.1: cancelled"));
    EXPECT_EQ(pid_of("tick.1"), p1);

    // Asked, and confirmed: tick.1 alone gets a new process.
    keys("r");
    ASSERT_TRUE(screen_has("restart tick.1? [y/N]"));
    keys("y");
    ASSERT_TRUE(WaitFor(
        [&] {
            auto p = pid_of("tick.1");
            return p > 0 && p != p1;
        },
        10s, 20ms));
    const auto fresh = std::to_string(pid_of("tick.1"));
    EXPECT_TRUE(screen_shows([&](const std::string& s) {
        auto r = row(s, "tick.1");
        return r.size() > 2 && r[2] == fresh;
    })) << "the new pid on the screen";
    EXPECT_TRUE(screen_has("restart tick.1: requested"));
    EXPECT_EQ(restarts_requested("tick.1"), 1) << "one restart: the refused one sent nothing";
    EXPECT_EQ(pid_of("tick.0"), p0);
    EXPECT_EQ(pid_of("tick.2"), p2);
}

class TopReadonly : public Top {
  protected:
    void SetUp() override {
        Top::SetUp();
        if (IsSkipped()) return;
        if (geteuid() != 0) GTEST_SKIP() << "needs root";
        if (!getgrnam("tty")) GTEST_SKIP() << "needs group tty";
        if (run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "true"}).code != 0)
            GTEST_SKIP() << "setpriv cannot drop privileges here";
        chmod(dir.c_str(), 0755);
        // The daemon creates the socket's own directory, with the access group.
        socket = (dir / "run" / "cowherd.sock").string();
    }
};

TEST_F(TopReadonly, AReadonlyClientSeesNoWriteKeys) {
    start("  w:\n    command: [sleep, \"100000\"]\n    start_timeout: 0s\n",
          "  socket_mode: \"0660\"\n  readonly_group: tty\n");
    const std::string tty = std::to_string(getgrnam("tty")->gr_gid);
    open_top("setpriv --reuid=65534 --regid=65534 --groups=" + tty + " ");
    ASSERT_TRUE(all_running({"w.0"}));
    ASSERT_TRUE(screen_has("readonly"));
    const auto pid = pid_of("w.0");

    auto no_write_keys = [](const std::string& s) {
        for (const char* word : {"restart", "scale", " stop", " start", "+/-"})
            if (has(s, word)) return false;
        return true;
    };
    std::string s = screen();
    EXPECT_TRUE(has(lines_of(s).back(), "q quit")) << "the hint line\n" << s;
    EXPECT_TRUE(no_write_keys(s)) << s;

    keys("?");
    ASSERT_TRUE(screen_has("cowctl top: keys"));
    s = screen();
    EXPECT_TRUE(has(s, "may only look")) << s;
    EXPECT_TRUE(has(s, "the worker's recent output")) << "the read keys are there\n" << s;
    EXPECT_TRUE(no_write_keys(s)) << s;
    keys("Escape");
    ASSERT_TRUE(screen_shows([](const std::string& sc) { return !has(sc, "cowctl top: keys"); }));

    keys("r");
    ASSERT_TRUE(screen_has("read-only"));
    s = screen();
    EXPECT_FALSE(has(s, "[y/N]")) << "nothing to confirm\n" << s;
    keys("y");
    EXPECT_EQ(pid_of("w.0"), pid);
    EXPECT_EQ(restarts_requested("w.0"), 0);
    EXPECT_EQ(log_count("control: denied"), 0) << "cowctl sent no write request";
}

}  // namespace
