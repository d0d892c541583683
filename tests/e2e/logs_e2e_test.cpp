// Worker output capture end to end: nothing lost, nothing torn, rotation, drop accounting,
// restarts mid-flood, odd bytes, reopen, and following.
#include <thread>

#include <sys/mman.h>
#include <sys/stat.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

std::uint32_t fnv(const std::string& s) {
    std::uint32_t h = 2166136261u;
    for (unsigned char c : s) {
        h ^= c;
        h *= 16777619u;
    }
    return h;
}

// Checks flood lines of one stream: every seq once, in order, each checksum right. Returns
// how many lines were seen; `gaps` lists the first missing seqs.
struct FloodCheck {
    long seen = 0, bad = 0, out_of_order = 0;
    long next = 0;
    void line(const std::string& l, char tag) {
        if (l.size() < 2 || l[0] != tag) return;
        std::istringstream in(l.substr(2));
        long seq;
        std::string payload;
        std::uint32_t sum;
        if (!(in >> seq >> payload >> sum) || fnv(std::to_string(seq) + " " + payload) != sum) {
            ++bad;
            return;
        }
        if (seq != next) ++out_of_order;
        next = seq + 1;
        ++seen;
    }
};

class Logs : public DaemonFixture {
  protected:
    std::string logdir() const { return (dir / "logs").string(); }
    std::string daemon_section() const { return "  log_dir: " + logdir() + "\n"; }

    // A file and its rotations, oldest first: F.K ... F.1, F.
    std::vector<std::string> rotated(const std::string& base) {
        std::vector<std::string> out;
        for (int k = 1000; k >= 1; --k) {
            std::string p = base + "." + std::to_string(k);
            if (fs::exists(p)) out.push_back(p);
        }
        if (fs::exists(base)) out.push_back(base);
        return out;
    }

    FloodCheck check(const std::string& base, char tag) {
        FloodCheck c;
        for (const auto& f : rotated(base)) {
            std::istringstream in(slurp(f));
            std::string l;
            while (std::getline(in, l))
                c.line(l, tag);
        }
        return c;
    }

    void flood_through_rotating_files(const std::string& extra_args);

    // `status POOL --json`'s log counters for the pool.
    boost::json::object pool_log(const std::string& pool) {
        return ctl_json({"status", pool})
            .as_object()["pools"]
            .as_array()[0]
            .as_object()["log"]
            .as_object();
    }
};

// A write per line, or (batched) 1024 lines per write: then most of each read is one run of
// whole lines, which goes to the file straight from the read buffer.
void Logs::flood_through_rotating_files(const std::string& extra_args) {
    const long N = 200'000;
    start("  flood:\n    command: [\"" + bin("flood") + "\", \"" + std::to_string(N) + "\"" +
              extra_args +
              "]\n    restart: never\n    start_timeout: 0s\n"
              "    stdout: {sink: file, max_size: 1MiB, keep: 1000}\n"
              "    stderr: {sink: file, max_size: 1MiB, keep: 1000}\n"
              "  idle:\n    command: [sleep, \"100000\"]\n",
          daemon_section());
    const std::string out = logdir() + "/flood.out", err = logdir() + "/flood.err";
    ASSERT_TRUE(
        WaitFor([&] { return check(out, 'o').seen == N / 2 && check(err, 'e').seen == N / 2; },
                std::chrono::seconds(60)));
    auto o = check(out, 'o'), e = check(err, 'e');
    EXPECT_EQ(o.bad + e.bad, 0) << "torn or corrupted lines";
    EXPECT_EQ(o.out_of_order + e.out_of_order, 0);
    EXPECT_GE(rotated(out).size(), 4u) << "the file rotated several times";
    EXPECT_GE(rotated(err).size(), 4u);
    auto l = pool_log("flood");
    EXPECT_EQ(as_int(l["stdout_lines"]), N / 2);
    EXPECT_EQ(as_int(l["dropped_lines"]), 0);
}

TEST_F(Logs, FloodThroughRotatingFilesArrivesExactlyOnceInOrder) {
    flood_through_rotating_files("");
}

TEST_F(Logs, BatchedFloodThroughRotatingFilesArrivesExactlyOnceInOrder) {
    flood_through_rotating_files(", --batch, \"1024\"");
}

TEST_F(Logs, DropModeCountsExactlyWhatIsMissing) {
    // The daemon's stdout is a pipe nobody reads until the flood is over, so the console
    // sink falls behind and drop mode drops.
    const long N = 200'000;
    write_config("  flood:\n    command: [\"" + bin("flood") + "\", \"" + std::to_string(N) +
                 "\", --payload, \"200\"]\n    restart: never\n    start_timeout: 0s\n"
                 "    log_backpressure: drop\n"
                 "  idle:\n    command: [sleep, \"100000\"]\n");
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    int lf = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    daemon = spawn_with({bin("cowherd"), "-c", config}, p[1], lf);
    close(p[1]);
    close(lf);
    ASSERT_TRUE(WaitFor([&] { return ctl({"version"}).code == 0; }));
    ASSERT_TRUE(WaitFor([&] { return workers("flood")[0]["state"].as_string() == "exited"; },
                        std::chrono::seconds(60)));
    // Everything the worker wrote has been read once the counters stop moving.
    std::int64_t dropped = -1, lines = -1;
    ASSERT_TRUE(WaitFor(
        [&] {
            auto l = pool_log("flood");
            std::int64_t total = as_int(l["stdout_lines"]) + as_int(l["stderr_lines"]);
            dropped = as_int(l["dropped_lines"]);
            if (total == N) lines = total;
            return total == N;
        },
        std::chrono::seconds(30)));
    EXPECT_GT(dropped, 0) << "the sink was slow enough to drop";
    // Now read the pipe until the daemon exits: what arrives plus what was dropped is all.
    ASSERT_EQ(ctl({"shutdown"}).code, 0);
    long got = 0;
    std::string buf, all;
    char chunk[65536];
    for (;;) {
        ssize_t n = read(p[0], chunk, sizeof chunk);
        if (n <= 0) break;
        all.append(chunk, static_cast<std::size_t>(n));
    }
    close(p[0]);
    std::istringstream in(all);
    std::string l;
    FloodCheck o, e;
    while (std::getline(in, l)) {
        auto bar = l.find(" | ");
        if (bar == std::string::npos) continue;
        ++got;
        std::string body = l.substr(bar + 3);
        o.line(body, 'o');
        e.line(body, 'e');
    }
    EXPECT_EQ(o.bad + e.bad, 0) << "no line is torn, even when others are dropped";
    EXPECT_EQ(got + dropped, N) << "got " << got << ", dropped " << dropped;
    (void)lines;
}

TEST_F(Logs, DropModeIntoAStalledFileCountsExactlyWhatIsMissing) {
    // flood.out and flood.err are FIFOs that nobody reads until the flood is over, so the file
    // sink falls behind and drop mode drops: batches of lines, and runs of lines queued in
    // their read buffers.
    const long N = 200'000;
    fs::create_directories(logdir());
    struct Fifos {
        int fd[2] = {-1, -1};
        ~Fifos() {
            for (int f : fd)
                if (f >= 0) close(f);
        }
    } fifo;
    for (int s = 0; s < 2; ++s) {
        const std::string p = logdir() + (s ? "/flood.err" : "/flood.out");
        ASSERT_EQ(mkfifo(p.c_str(), 0600), 0);
        // Read-write, so the daemon's open finds a reader, and we read only later.
        fifo.fd[s] = open(p.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
        ASSERT_GE(fifo.fd[s], 0);
    }
    start("  flood:\n    command: [\"" + bin("flood") + "\", \"" + std::to_string(N) +
              "\", --batch, \"64\"]\n    restart: never\n    start_timeout: 0s\n"
              "    log_backpressure: drop\n"
              "    stdout: {sink: file, max_size: 0}\n    stderr: {sink: file, max_size: 0}\n"
              "  idle:\n    command: [sleep, \"100000\"]\n",
          daemon_section());
    std::int64_t dropped = -1;
    ASSERT_TRUE(WaitFor(
        [&] {
            auto l = pool_log("flood");
            dropped = as_int(l["dropped_lines"]);
            return as_int(l["stdout_lines"]) + as_int(l["stderr_lines"]) == N;
        },
        std::chrono::seconds(60)));
    EXPECT_GT(dropped, 0) << "the sink was slow enough to drop";
    // Read the FIFOs while the daemon writes what it queued and exits.
    std::string got[2];
    auto drain = [&] {
        char chunk[65536];
        for (int s = 0; s < 2; ++s)
            for (ssize_t n; (n = read(fifo.fd[s], chunk, sizeof chunk)) > 0;)
                got[s].append(chunk, static_cast<std::size_t>(n));
    };
    ASSERT_EQ(ctl({"shutdown"}).code, 0);
    ASSERT_TRUE(WaitFor(
        [&] {
            drain();
            return wait_exit(std::chrono::milliseconds(0));
        },
        std::chrono::seconds(30)));
    drain();
    FloodCheck o, e;
    long arrived = 0;
    for (int s = 0; s < 2; ++s) {
        std::istringstream in(got[s]);
        for (std::string l; std::getline(in, l); ++arrived)
            (s ? e : o).line(l, s ? 'e' : 'o');
    }
    EXPECT_EQ(o.bad + e.bad, 0) << "no line is torn, even when others are dropped";
    EXPECT_EQ(o.seen + e.seen, arrived) << "every line that arrived is a whole flood line";
    EXPECT_EQ(arrived + dropped, N) << "arrived " << arrived << ", dropped " << dropped;
}

TEST_F(Logs, AKillMidFloodLosesNothingWrittenBeforeIt) {
    const std::string progress = (dir / "progress").string();
    start("  flood:\n    command: [\"" + bin("flood") + "\", \"100000000\", --progress, \"" +
              progress +
              "\"]\n    start_timeout: 0s\n    max_restarts: {count: 100, within: 60s}\n"
              "    stdout: {sink: file, max_size: 0}\n    stderr: {sink: file, max_size: 0}\n",
          daemon_section());
    pid_t pid = static_cast<pid_t>(as_int(workers("flood")[0]["pid"]));
    const std::string mine = progress + "." + std::to_string(pid);
    auto written = [&] {
        std::int64_t n = 0;
        std::ifstream(mine, std::ios::binary).read(reinterpret_cast<char*>(&n), 8);
        return n;
    };
    ASSERT_TRUE(WaitFor([&] { return written() > 50'000; }));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    ASSERT_TRUE(WaitFor([&] { return as_int(workers("flood")[0]["restarts"]) == 1; }));
    // What the killed generation had written when it died; its lines were still in the
    // pipe, and the pipe outlives the process, so every one of them must arrive.
    const std::int64_t n = written();
    const std::int64_t want_out = (n + 1) / 2, want_err = n / 2;
    auto first_generation = [&](const std::string& file) {
        std::istringstream in(slurp(file));
        std::string l;
        std::int64_t expect = 0;
        while (std::getline(in, l)) {
            std::istringstream ls(l.substr(2));
            long seq;
            ls >> seq;
            if (seq != expect) break;  // the next generation starts again at 0
            ++expect;
        }
        return expect;
    };
    // A kill between a write and the counter's update leaves one line more than counted.
    auto total = [&] {
        return first_generation(logdir() + "/flood.out") +
               first_generation(logdir() + "/flood.err");
    };
    ASSERT_TRUE(WaitFor([&] { return total() >= n; }, std::chrono::seconds(20)))
        << "arrived " << first_generation(logdir() + "/flood.out") << " + "
        << first_generation(logdir() + "/flood.err") << ", written " << n;
    EXPECT_LE(total(), n + 1);
    EXPECT_GE(first_generation(logdir() + "/flood.out"), want_out);
    EXPECT_GE(first_generation(logdir() + "/flood.err"), want_err);
}

// The in-memory ring holds exactly the newest lines that fit in log_ring (a line costing its
// length + 32), however the output arrived: big reads skip copying lines that could not
// survive them, and must not change what is kept.
TEST_F(Logs, TheRingKeepsExactlyTheNewestLinesThatFit) {
    const long N = 200'000;
    // cat writes 128 KiB at a time, so the daemon reads big chunks of many lines.
    const std::string file = (dir / "seq.txt").string();
    start("  seq:\n    command: [sh, -c, \"seq 1 " + std::to_string(N) + " > " + file +
              " && exec cat " + file +
              "\"]\n    restart: never\n    start_timeout: 0s\n    stdout: file\n"
              "    log_ring: 4KiB\n"
              "  idle:\n    command: [sleep, \"100000\"]\n",
          daemon_section());
    ASSERT_TRUE(WaitFor([&] { return count_state("seq", "exited") == 1; }));
    auto v = ctl_json({"logs", "seq", "-n", "100000"});
    auto& arr = v.as_object()["lines"].as_array();
    ASSERT_FALSE(arr.empty());
    std::vector<long> got;
    std::size_t cost = 0;
    for (auto& l : arr) {
        std::string text(l.as_object()["line"].as_string());
        got.push_back(std::stol(text));
        cost += text.size() + 32;
    }
    EXPECT_EQ(got.back(), N) << "the newest line is last";
    for (std::size_t i = 1; i < got.size(); ++i)
        ASSERT_EQ(got[i], got[i - 1] + 1) << "consecutive at " << i;
    EXPECT_LE(cost, 4096u);
    const std::size_t one_more = std::to_string(got.front() - 1).size() + 32;
    EXPECT_GT(cost + one_more, 4096u) << "the line before the oldest would have fitted";
}

TEST_F(Logs, PartialLastLineLongLinesAndBinaryBytes) {
    const std::string script = (dir / "odd.sh").string();
    std::ofstream(script) << "printf 'first\\n'\n"
                             "head -c 1048576 /dev/zero | tr '\\0' 'y'\n"
                             "printf '\\n'\n"
                             "printf 'bin\\000ary \\377\\376 bytes\\n'\n"
                             "printf 'no newline at the end'\n";
    start("  odd:\n    command: [sh, \"" + script +
              "\"]\n    restart: never\n    start_timeout: 0s\n    stdout: file\n"
              "  idle:\n    command: [sleep, \"100000\"]\n",
          daemon_section());
    const std::string out = logdir() + "/odd.out";
    ASSERT_TRUE(
        WaitFor([&] { return slurp(out).find("no newline at the end\n") != std::string::npos; }));
    std::string all = slurp(out);
    std::vector<std::string> lines;
    std::istringstream in(all);
    for (std::string l; std::getline(in, l);)
        lines.push_back(l);
    ASSERT_GE(lines.size(), 4u);
    EXPECT_EQ(lines.front(), "first");
    // 1 MiB of 'y' became 64 pieces of 16 KiB; all but the last marked as continued.
    int pieces = 0;
    for (const auto& l : lines) {
        if (l.empty() || l[0] != 'y') continue;
        ++pieces;
        EXPECT_LE(l.size(), 16 * 1024 + 32u);
    }
    EXPECT_EQ(pieces, 64);
    EXPECT_NE(all.find(std::string("bin\0ary \xff\xfe bytes\n", 17)), std::string::npos)
        << "NUL and invalid UTF-8 pass through untouched";
    EXPECT_EQ(lines.back(), "no newline at the end") << "the partial last line is flushed";
    // And through cowctl logs (JSON), invalid UTF-8 becomes U+FFFD, the line intact.
    auto v = ctl_json({"logs", "odd", "-n", "3"});
    auto& arr = v.as_object()["lines"].as_array();
    ASSERT_EQ(arr.size(), 3u);
    EXPECT_NE(std::string(arr[1].as_object()["line"].as_string()).find("\xEF\xBF\xBD"),
              std::string::npos);
}

TEST_F(Logs, DeletedFilesAreRecreatedAndSigusr1Reopens) {
    start("  tick:\n    command: [\"" + bin("cow-ticker") +
              "\", \"1\"]\n    stdout: file\n    start_timeout: 0s\n",
          daemon_section());
    const std::string out = logdir() + "/tick.out";
    ASSERT_TRUE(WaitFor([&] { return slurp(out).find("tick 1") != std::string::npos; }));
    fs::remove(out);
    ASSERT_TRUE(
        WaitFor([&] { return fs::exists(out) && slurp(out).find("tick") != std::string::npos; },
                std::chrono::seconds(10)))
        << "a deleted file is recreated";
    // logrotate's way: rename, then SIGUSR1.
    fs::rename(out, out + ".old");
    ASSERT_EQ(kill(daemon, SIGUSR1), 0);
    ASSERT_TRUE(
        WaitFor([&] { return fs::exists(out) && slurp(out).find("tick") != std::string::npos; },
                std::chrono::seconds(10)));
    auto old_size = fs::file_size(out + ".old");
    ASSERT_TRUE(WaitFor(
        [&] {
            std::string s = slurp(out);
            return std::count(s.begin(), s.end(), '\n') >= 2;
        },
        std::chrono::seconds(10)));
    EXPECT_EQ(fs::file_size(out + ".old"), old_size) << "nothing more goes to the renamed file";
    EXPECT_EQ(ctl({"reopen"}).code, 0);
}

TEST_F(Logs, FollowSeesNewLinesWithin100ms) {
    start(
        "  stamp:\n    command: [sh, -c, \"while :; do echo stamp $(cat /proc/uptime | cut -d' ' "
        "-f1); sleep 0.2; done\"]\n",
        "");
    // Our clock for the comparison: the same /proc/uptime the worker prints (10 ms grain),
    // read when each line arrives through cowctl logs -f.
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    pid_t f =
        spawn_with({bin("cowctl"), "--socket", socket, "logs", "-f", "-n", "0", "stamp"}, p[1], -1);
    close(p[1]);
    std::vector<double> delays;
    std::string buf;
    char chunk[4096];
    while (delays.size() < 10) {
        pollfd pf{p[0], POLLIN, 0};
        ASSERT_GT(poll(&pf, 1, 5000), 0) << "no line within 5 s";
        ssize_t n = read(p[0], chunk, sizeof chunk);
        ASSERT_GT(n, 0);
        double now = std::stod(slurp("/proc/uptime"));
        buf.append(chunk, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos) {
            std::string l = buf.substr(0, nl);
            buf.erase(0, nl + 1);
            auto s = l.find("stamp ");
            if (s != std::string::npos) delays.push_back(now - std::stod(l.substr(s + 6)));
        }
    }
    kill(f, SIGTERM);
    close(p[0]);
    std::sort(delays.begin(), delays.end());
    // /proc/uptime has 10 ms resolution, so allow one tick of rounding.
    EXPECT_LT(delays[delays.size() / 2], 0.11) << "median";
    // A busy CI machine can delay a single line; a lost wakeup would delay it by seconds.
    EXPECT_LT(delays.back(), 0.5) << "max";
}

}  // namespace

namespace {

// Found by the operator soak: the daemon kept every log file it had written open for its
// whole life, also once its pool was removed or its worker scaled away.
TEST_F(Logs, FilesOfARemovedPoolAndAScaledAwayWorkerAreClosed) {
    const std::string talker =
        "    command: [sh, -c, 'echo hello; exec sleep 100000']\n"
        "    stdout: {sink: file, per_worker: true}\n";
    start("  keep:\n" + talker + "    workers: 2\n  gone:\n" + talker, daemon_section());
    const std::string dir_logs = logdir();
    auto open_on = [&](const std::string& name) {
        int n = 0;
        for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(daemon) + "/fd")) {
            std::error_code ec;
            n += fs::read_symlink(e.path(), ec) == fs::path(dir_logs) / name;
        }
        return n;
    };
    ASSERT_TRUE(WaitFor([&] {
        return open_on("keep.0.out") == 1 && open_on("keep.1.out") == 1 &&
               open_on("gone.0.out") == 1;
    })) << slurp(log);
    write_config("  keep:\n" + talker + "    workers: 1\n", daemon_section());
    auto r = ctl({"reload"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(WaitFor([&] { return open_on("gone.0.out") == 0 && open_on("keep.1.out") == 0; }))
        << "gone.0.out: " << open_on("gone.0.out") << ", keep.1.out: " << open_on("keep.1.out");
    EXPECT_EQ(open_on("keep.0.out"), 1);
    EXPECT_EQ(slurp(dir_logs + "/gone.0.out"), "hello\n") << "its lines were written first";
}

}  // namespace
