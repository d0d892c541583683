// File sinks on a disk that fills up (issue 18): `block` holds the worker until there is room
// and then delivers every line once, in order, whole; `drop` counts exactly what is missing
// and tears no line. A log_dir that cannot be used is a config error at --check and at
// startup, and `cowctl reopen` names each file it could not open.
#include <sys/mount.h>
#include <sys/syscall.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;

namespace {

std::uint32_t fnv(const std::string& s) {
    std::uint32_t h = 2166136261u;
    for (unsigned char c : s) {
        h ^= c;
        h *= 16777619u;
    }
    return h;
}

// Flood lines of one stream in a file: whole (the checksum holds), every seq once, in order.
struct FloodCheck {
    long lines = 0, seen = 0, bad = 0, out_of_order = 0, next = 0;
    explicit FloodCheck(const std::string& text, char tag) {
        std::istringstream in(text);
        for (std::string l; std::getline(in, l);) {
            ++lines;
            std::istringstream f(l.size() > 2 ? l.substr(2) : "");
            long seq;
            std::string payload;
            std::uint32_t sum;
            if (l.size() < 2 || l[0] != tag || !(f >> seq >> payload >> sum) ||
                fnv(std::to_string(seq) + " " + payload) != sum) {
                ++bad;
                continue;
            }
            if (seq != next) ++out_of_order;
            next = seq + 1;
            ++seen;
        }
        if (!text.empty() && text.back() != '\n') ++bad;  // a torn last line
    }
};

class LogsDisk : public DaemonFixture {
  protected:
    fs::path disk;
    bool mounted = false;
    int filler = -1;

    // A tmpfs of `size` inside the test's directory, filled up but for `room` bytes by a
    // file that the test deletes to make room.
    void mount_full_disk(const std::string& size, std::size_t room) {
        if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
        disk = dir / "disk";
        fs::create_directories(disk);
        if (::mount("tmpfs", disk.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                    ("size=" + size + ",mode=0755").c_str()) != 0)
            GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
        mounted = true;
        fs::create_directories(logdir());
        const std::string path = (disk / "filler").string();
        filler = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ASSERT_GE(filler, 0);
        const std::string block(1 << 16, 'f');
        off_t size_now = 0;
        for (ssize_t n; (n = ::write(filler, block.data(), block.size())) > 0;)
            size_now += n;
        ASSERT_EQ(errno, ENOSPC);
        ASSERT_GT(size_now, static_cast<off_t>(room));
        ASSERT_EQ(::ftruncate(filler, size_now - static_cast<off_t>(room)), 0);
    }

    void make_room() {
        ::close(filler);
        filler = -1;
        fs::remove(disk / "filler");
    }

    void TearDown() override {
        // The daemon first (it holds files on the tmpfs), then the tmpfs, then the rest.
        if (daemon > 0 && exit_status < 0) {
            kill(daemon, SIGTERM);
            if (!wait_exit(std::chrono::seconds(15))) kill(daemon, SIGKILL);
            wait_exit(std::chrono::seconds(5));
        }
        if (filler >= 0) ::close(filler);
        if (mounted && ::umount2(disk.c_str(), MNT_DETACH) != 0)
            ADD_FAILURE() << "umount " << disk << ": " << std::strerror(errno);
        DaemonFixture::TearDown();
    }

    std::string logdir() const { return (disk / "logs").string(); }

    boost::json::object pool_log(const std::string& pool) {
        // at(): throws (a test failure), not a crash, when the daemon is gone.
        return ctl_json({"status", pool})
            .as_object()
            .at("pools")
            .as_array()
            .at(0)
            .as_object()
            .at("log")
            .as_object();
    }

    std::string state(const std::string& pool) {
        auto ws = workers(pool);
        return ws.empty() ? "" : std::string(ws[0]["state"].as_string());
    }

    std::int64_t write_errors(const std::string& pool) {
        auto l = pool_log(pool);
        return as_int(l["stdout_write_errors"]) + as_int(l["stderr_write_errors"]);
    }

    // Asleep in write(2): a worker writing to a pipe that has room never sleeps there.
    static bool blocked_in_write(pid_t pid) {
        const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
        const auto rp = stat.rfind(')');
        if (rp == std::string::npos || rp + 2 >= stat.size() || stat[rp + 2] != 'S') return false;
        std::istringstream sc(slurp("/proc/" + std::to_string(pid) + "/syscall"));
        long nr = -1;
        sc >> nr;
        return nr == SYS_write || nr == SYS_writev;
    }
};

TEST_F(LogsDisk, BlockHoldsTheWorkerWhileTheDiskIsFullThenDeliversEveryLineOnce) {
    // More than cowherd could hold for it (a 256 KiB pipe per stream and the writer's 8 MiB
    // queue), so the worker must wait for the disk; a few lines fit before it is full.
    const long N = 200'000;
    ASSERT_NO_FATAL_FAILURE(mount_full_disk("40m", 64 * 1024));
    if (IsSkipped()) return;
    const std::string progress = (dir / "progress").string();
    start("  flood:\n    command: [\"" + bin("flood") + "\", \"" + std::to_string(N) +
              "\", --payload, \"100\", --progress, \"" + progress +
              "\"]\n    restart: never\n    start_timeout: 0s\n"
              "    stdout: {sink: file, max_size: 0}\n    stderr: {sink: file, max_size: 0}\n"
              "  idle:\n    command: [sleep, \"100000\"]\n",
          "  log_dir: " + logdir() + "\n");
    pid_t pid = -1;
    ASSERT_TRUE(WaitFor([&] {
        auto ws = workers("flood");
        pid = ws.empty() ? -1 : static_cast<pid_t>(as_int(ws[0]["pid"]));
        return pid > 0;
    }));
    auto written = [&] {
        std::int64_t n = 0;
        std::ifstream(progress + "." + std::to_string(pid), std::ios::binary)
            .read(reinterpret_cast<char*>(&n), 8);
        return n;
    };
    ASSERT_TRUE(
        WaitFor([&] { return log_count("No space left on device") > 0 && blocked_in_write(pid); },
                std::chrono::seconds(30)))
        << "the worker waits on its pipe";
    // Retries go by, and still nothing moves: cowherd no longer reads the worker's pipes.
    std::int64_t errors = write_errors("flood");
    ASSERT_TRUE(WaitFor([&] { return write_errors("flood") >= errors + 2; }));
    const std::int64_t before = written();
    errors = write_errors("flood");
    ASSERT_TRUE(WaitFor([&] { return write_errors("flood") >= errors + 2; }));
    EXPECT_EQ(written(), before) << "the worker did not get on while the disk was full";
    EXPECT_LT(before, N);
    EXPECT_TRUE(blocked_in_write(pid));
    EXPECT_EQ(state("flood"), "running");
    EXPECT_EQ(as_int(pool_log("flood")["dropped_lines"]), 0);
    // Said once per file, not per line or per retry.
    EXPECT_LE(log_count("No space left on device"), 2);

    make_room();
    ASSERT_TRUE(WaitFor([&] { return state("flood") == "exited"; }, std::chrono::seconds(60)));
    const std::string out = logdir() + "/flood.out", err = logdir() + "/flood.err";
    ASSERT_TRUE(WaitFor(
        [&] {
            return FloodCheck(slurp(out), 'o').seen == N / 2 &&
                   FloodCheck(slurp(err), 'e').seen == N / 2;
        },
        std::chrono::seconds(30)));
    FloodCheck o(slurp(out), 'o'), e(slurp(err), 'e');
    EXPECT_EQ(o.bad + e.bad, 0) << "torn or corrupted lines";
    EXPECT_EQ(o.out_of_order + e.out_of_order, 0);
    EXPECT_EQ(o.lines + e.lines, N) << "every line once";
    EXPECT_EQ(as_int(pool_log("flood")["dropped_lines"]), 0);
    EXPECT_GE(log_count("writable again"), 1);
}

TEST_F(LogsDisk, DropCountsExactlyWhatIsMissingOnAFullDiskAndTearsNoLine) {
    const long N = 20'000;  // the issue's: on a 1 MiB tmpfs, 8,465 arrived, 0 counted
    ASSERT_NO_FATAL_FAILURE(mount_full_disk("4m", 64 * 1024));
    if (IsSkipped()) return;
    start("  flood:\n    command: [\"" + bin("flood") + "\", \"" + std::to_string(N) +
              "\"]\n    restart: never\n    start_timeout: 0s\n    log_backpressure: drop\n"
              "    stdout: {sink: file, max_size: 0}\n    stderr: {sink: file, max_size: 0}\n"
              "  idle:\n    command: [sleep, \"100000\"]\n",
          "  log_dir: " + logdir() + "\n");
    ASSERT_TRUE(WaitFor([&] { return state("flood") == "exited"; }, std::chrono::seconds(60)));
    ASSERT_TRUE(WaitFor([&] {
        auto l = pool_log("flood");
        return as_int(l["stdout_lines"]) + as_int(l["stderr_lines"]) == N;
    }));
    const std::string out = logdir() + "/flood.out", err = logdir() + "/flood.err";
    std::int64_t arrived = 0, dropped = 0;
    auto settled = [&] {
        arrived = FloodCheck(slurp(out), 'o').lines + FloodCheck(slurp(err), 'e').lines;
        dropped = as_int(pool_log("flood")["dropped_lines"]);
        return arrived + dropped == N;
    };
    EXPECT_TRUE(WaitFor(settled)) << "arrived " << arrived << ", dropped " << dropped;
    EXPECT_TRUE(settled()) << "and stays so: arrived " << arrived << ", dropped " << dropped;
    EXPECT_GT(dropped, 0) << "the disk was full";
    EXPECT_GT(arrived, 0) << "what fitted arrived";
    FloodCheck o(slurp(out), 'o'), e(slurp(err), 'e');
    EXPECT_EQ(o.bad + e.bad, 0) << "no line is torn, even when the disk fills mid-line";
    EXPECT_EQ(o.out_of_order + e.out_of_order, 0) << "lines are missing, never reordered";
    EXPECT_GT(write_errors("flood"), 0);
    // Once per file at each start of a failure, not per line.
    const int said = log_count("No space left on device");
    EXPECT_GE(said, 1);
    EXPECT_LE(said, 2 + 2 * log_count("writable again"));
}

// Not about a full disk, and no root needed: a log_dir that cannot be used.
class LogsDir : public DaemonFixture {};

TEST_F(LogsDir, ALogDirThatCannotBeCreatedFailsCheckAndStartupBeforeAnyWorker) {
    std::ofstream((dir / "file").string()) << "a regular file";
    const std::string logdir = (dir / "file" / "logs").string();
    const std::string marker = (dir / "started").string();
    write_config("  web:\n    command: [sh, -c, \"touch " + marker +
                     "; exec sleep 100000\"]\n    stdout: file\n",
                 "  log_dir: " + logdir + "\n");
    auto check = run({bin("cowherd"), "--check", "-c", config});
    EXPECT_EQ(check.code, 2);
    EXPECT_NE(check.err.find("daemon.log_dir " + logdir + " cannot be created: Not a directory"),
              std::string::npos)
        << check.err;
    start("  web:\n    command: [sh, -c, \"touch " + marker +
              "; exec sleep 100000\"]\n    stdout: file\n",
          "  log_dir: " + logdir + "\n", false);
    ASSERT_TRUE(wait_exit(std::chrono::seconds(10)));
    EXPECT_EQ(exit_status, 2) << "a config error";
    EXPECT_NE(slurp(log).find("cannot be created: Not a directory"), std::string::npos)
        << slurp(log);
    EXPECT_FALSE(fs::exists(marker)) << "no worker started";
}

TEST_F(LogsDir, CheckCreatesTheLogDir) {
    const std::string logdir = (dir / "a" / "b").string();
    write_config("  web:\n    command: [sleep, \"100000\"]\n    stderr: file\n",
                 "  log_dir: " + logdir + "\n");
    auto check = run({bin("cowherd"), "--check", "-c", config});
    EXPECT_EQ(check.code, 0) << check.err;
    EXPECT_TRUE(fs::is_directory(logdir));
}

TEST_F(LogsDir, ReopenNamesEachFileThatCannotBeOpened) {
    const std::string logdir = (dir / "logs").string();
    start("  tick:\n    command: [\"" + bin("cow-ticker") +
              "\", \"1\"]\n    stdout: file\n    start_timeout: 0s\n",
          "  log_dir: " + logdir + "\n");
    const std::string out = logdir + "/tick.out";
    ASSERT_TRUE(WaitFor([&] { return slurp(out).find("tick") != std::string::npos; }));
    // The directory goes, and a regular file takes its name.
    fs::remove_all(logdir);
    std::ofstream(logdir) << "not a directory";
    auto r = ctl({"reopen"});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find(out + ": Not a directory"), std::string::npos) << r.err;
    // The file is fine again: reopen says so, and the lines held meanwhile arrive.
    fs::remove(logdir);
    fs::create_directories(logdir);
    r = ctl({"reopen"});
    EXPECT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(WaitFor([&] { return slurp(out).find("tick") != std::string::npos; }));
}

}  // namespace
