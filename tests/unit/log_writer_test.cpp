// The log writer thread: targets added from the loop while it writes (a race once lost
// whole files), rotation by rename, the capacity signal, read buffers queued whole, and
// write errors (a full disk: held under block, counted under drop, no line ever torn).
#include "daemon/logs/log_writer.hpp"

#include <atomic>
#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/wait_for.hpp"

using namespace cow;
using cow::test::slurp;
using cow::test::WaitFor;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/cowherd-logw-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};

std::size_t lines_in(const fs::path& p) {
    std::ifstream in(p);
    std::size_t n = 0;
    for (std::string l; std::getline(in, l);)
        ++n;
    return n;
}

TEST(LogWriter, TargetsAddedWhileWritingLoseNothing) {
    TempDir d;
    boost::asio::io_context io;
    LogWriter w(io);
    std::vector<int> targets;
    // Add targets one by one while the thread is busy writing to the earlier ones.
    for (int t = 0; t < 64; ++t) {
        targets.push_back(w.file_target((d.path / ("f" + std::to_string(t))).string(), 0, 0));
        for (int i = 0; i < 200; ++i)
            for (int k : targets)
                w.write_anyway(k, "line " + std::to_string(i) + "\n");
    }
    w.flush();
    std::size_t total = 0;
    for (int t = 0; t < 64; ++t)
        total += lines_in(d.path / ("f" + std::to_string(t)));
    EXPECT_EQ(total, 200u * (64 * 65 / 2));
    EXPECT_EQ(w.write_errors(), 0u);
}

// How many of this process's fds are open on `path`.
int fds_on(const fs::path& path) {
    int n = 0;
    for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        n += fs::read_symlink(e.path(), ec) == path;
    }
    return n;
}

// A pool removed by reload, or a worker scaled away, leaves files nobody writes to: they are
// closed once their lines are written, and opened again if something writes there later.
TEST(LogWriter, AReleasedFileIsClosedAfterItsLinesAndReopenedByTheNextWrite) {
    TempDir d;
    boost::asio::io_context io;
    LogWriter w(io);
    const fs::path path = d.path / "gone.out";
    const int t = w.file_target(path.string(), 0, 0);
    for (int i = 0; i < 1000; ++i)
        w.write_anyway(t, "line " + std::to_string(i) + "\n");
    w.release(t);
    w.flush();
    EXPECT_EQ(lines_in(path), 1000u) << "every line queued before the release is written";
    EXPECT_EQ(fds_on(path), 0);
    w.write_anyway(t, "again\n");
    w.flush();
    EXPECT_EQ(lines_in(path), 1001u);
    EXPECT_EQ(fds_on(path), 1);
}

TEST(LogWriter, RotatesByRenamingAndKeepsEveryLine) {
    TempDir d;
    boost::asio::io_context io;
    LogWriter w(io);
    const auto base = d.path / "pool.out";
    int t = w.file_target(base.string(), 4096, 100);
    for (int i = 0; i < 2000; ++i)
        w.write_anyway(t, "0123456789abcdef " + std::to_string(i) + "\n");
    w.flush();
    std::size_t total = lines_in(base);
    int rotated = 0;
    for (int k = 1; fs::exists(base.string() + "." + std::to_string(k)); ++k) {
        total += lines_in(base.string() + "." + std::to_string(k));
        EXPECT_LE(fs::file_size(base.string() + "." + std::to_string(k)), 4096u);
        ++rotated;
    }
    EXPECT_EQ(total, 2000u);
    EXPECT_GE(rotated, 5);
    EXPECT_EQ(w.rotations(), static_cast<std::uint64_t>(rotated));
}

TEST(LogWriter, RefusesPastCapacityAndSaysWhenDrained) {
    TempDir d;
    boost::asio::io_context io;
    LogWriter w(io, 1024);
    int drained = 0;
    w.on_drained([&] { ++drained; });
    int t = w.file_target((d.path / "x").string(), 0, 0);
    int refused = 0;
    for (int i = 0; i < 10000; ++i)
        refused += !w.write(t, std::string(100, 'x') + "\n");
    w.flush();
    EXPECT_GT(refused, 0) << "the queue is bounded";
    io.run();  // the drained notice was posted to the loop
    EXPECT_GE(drained, 1);
}

LogWriter::Buffer filled(LogWriter& w, const std::string& text) {
    LogWriter::Buffer b = w.take_buffer();
    EXPECT_GE(b.capacity, text.size());
    std::copy(text.begin(), text.end(), b.data.get());
    return b;
}

TEST(LogWriter, ABufferItemWritesItsHeadThenItsRunInQueueOrder) {
    TempDir d;
    boost::asio::io_context io;
    LogWriter w(io);
    const auto path = d.path / "pool.out";
    int t = w.file_target(path.string(), 0, 0);
    std::string expect;
    std::vector<const char*> handed;
    for (int i = 0; i < 50; ++i) {
        const std::string a = "string " + std::to_string(i) + "\n";
        w.write_anyway(t, a);
        // The run is in the middle of the buffer: bytes before and after it are not written.
        const std::string run =
            "run " + std::to_string(i) + " a\nrun " + std::to_string(i) + " b\n";
        LogWriter::Buffer b = filled(w, "junk" + run + "junk");
        handed.push_back(b.data.get());
        const std::string head = "head " + std::to_string(i) + "\n";
        ASSERT_TRUE(w.write(t, head, b, 4, run.size(), true));
        EXPECT_FALSE(b) << "the writer took the buffer";
        expect += a + head + run;
    }
    w.flush();
    std::ifstream in(path);
    std::stringstream got;
    got << in.rdbuf();
    EXPECT_EQ(got.str(), expect);
    // Written buffers come back for the next reads instead of a new allocation each time.
    LogWriter::Buffer again = w.take_buffer();
    EXPECT_NE(std::find(handed.begin(), handed.end(), again.data.get()), handed.end());
}

TEST(LogWriter, ABufferRefusedOverCapacityStaysWithTheCaller) {
    TempDir d;
    boost::asio::io_context io;
    LogWriter w(io, 64 * 1024);
    // A FIFO nobody reads until we say so: the writer thread blocks on it, so the queue stays
    // over capacity for as long as the test needs.
    const auto fifo = d.path / "slow";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    int reader = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);  // so the writer's open succeeds
    ASSERT_GE(reader, 0);
    int t = w.file_target(fifo.string(), 0, 0);
    const std::string big(512 * 1024, 'x');
    w.write_anyway(t, big + "\n");  // more than the FIFO holds: the thread blocks in write
    w.write_anyway(t, std::string(100 * 1024, 'y') + "\n");
    ASSERT_TRUE(w.over_capacity());
    LogWriter::Buffer b = filled(w, "refused\n");
    const char* mine = b.data.get();
    EXPECT_FALSE(w.write(t, "", b, 0, 8, false));
    EXPECT_EQ(b.data.get(), mine) << "refused: the caller keeps its buffer";
    // block policy: queued even over capacity.
    EXPECT_TRUE(w.write(t, "", b, 0, 8, true));
    EXPECT_FALSE(b);
    // Drain the FIFO: everything queued arrives, in order, the refused copy not at all.
    const std::size_t want = big.size() + 1 + 100 * 1024 + 1 + 8;
    std::string got;
    char chunk[65536];
    while (got.size() < want) {
        ssize_t n = ::read(reader, chunk, sizeof chunk);
        ASSERT_GT(n, 0);
        got.append(chunk, static_cast<std::size_t>(n));
    }
    w.flush();
    ::close(reader);
    EXPECT_EQ(got.size(), want);
    EXPECT_EQ(got.substr(got.size() - 8), "refused\n");
    EXPECT_EQ(got.find("refused"), got.size() - 8);
}

// A disk with `room` bytes left, for the writer's files: it takes what fits (a short write,
// as a full filesystem does) and then fails with ENOSPC, until the test makes room.
struct Disk {
    std::atomic<std::int64_t> room{INT64_MAX};
    LogWriter::WriteFn fn() {
        return [this](int fd, const iovec* iov, int n) -> ssize_t {
            const std::int64_t r = room.load();
            if (r <= 0) {
                errno = ENOSPC;
                return -1;
            }
            std::vector<iovec> fit;
            auto left = static_cast<std::size_t>(r);
            for (int i = 0; i < n && left > 0; ++i) {
                const std::size_t take = std::min(left, iov[i].iov_len);
                fit.push_back({iov[i].iov_base, take});
                left -= take;
            }
            const ssize_t w = ::writev(fd, fit.data(), static_cast<int>(fit.size()));
            if (w > 0) room -= w;
            return w;
        };
    }
};

struct Events {
    std::vector<LogWriter::Event> all;
    void attach(LogWriter& w) {
        w.on_event([this](const LogWriter::Event& e) { all.push_back(e); });
    }
    int started() const {
        return static_cast<int>(
            std::count_if(all.begin(), all.end(), [](auto& e) { return e.started; }));
    }
    int recovered() const {
        return static_cast<int>(
            std::count_if(all.begin(), all.end(), [](auto& e) { return e.recovered; }));
    }
    std::uint64_t lost() const {
        std::uint64_t n = 0;
        for (const auto& e : all)
            n += e.lost;
        return n;
    }
    std::uint64_t errors() const {
        std::uint64_t n = 0;
        for (const auto& e : all)
            n += e.errors;
        return n;
    }
};

// Runs what the writer posted to the loop so far (restart: a poll that ran out of work
// leaves the context stopped).
void run_posted(boost::asio::io_context& io) {
    io.restart();
    io.poll();
}

std::string numbered(int i) {
    return "line " + std::to_string(i) + " " + std::string(static_cast<std::size_t>(i % 37), 'x') +
           "\n";
}

TEST(LogWriter, AFullDiskUnderBlockHoldsTheLinesAndWritesThemAllOnceThereIsRoom) {
    TempDir d;
    boost::asio::io_context io;
    Disk disk;
    disk.room = 1000;
    LogWriter w(io, 8u << 20, disk.fn());
    Events ev;
    ev.attach(w);
    int drained = 0;
    w.on_drained([&] { ++drained; });
    const auto path = d.path / "pool.out";
    const int t = w.file_target(path.string(), 0, 0);
    const LogWriter::Dest dest(t, 3, true);
    std::string expect;
    for (int i = 0; i < 200; ++i) {
        expect += numbered(i);
        w.write_anyway(dest, numbered(i));
    }
    w.flush();
    EXPECT_FALSE(w.room_for(t)) << "the streams of a block pool stop reading";
    std::string got = slurp(path.string());
    ASSERT_FALSE(got.empty());
    EXPECT_LT(got.size(), expect.size());
    EXPECT_EQ(expect.compare(0, got.size(), got), 0) << "the first lines, in order";
    EXPECT_EQ(got.back(), '\n') << "the line the disk cut was cut off again";
    ASSERT_TRUE(WaitFor([&] { return w.write_errors() >= 3; })) << "retried on a timer";
    EXPECT_FALSE(w.room_for(t));
    run_posted(io);
    EXPECT_EQ(ev.started(), 1) << "said once, not per line or per retry";
    ASSERT_FALSE(ev.all.empty());
    EXPECT_EQ(ev.all.front().account, 3u);
    EXPECT_TRUE(ev.all.front().held);
    EXPECT_NE(ev.all.front().what.find(path.string() + ": No space left on device"),
              std::string::npos)
        << ev.all.front().what;
    EXPECT_EQ(ev.recovered(), 0);
    // Room again: the next retry writes everything held, and the streams may read again.
    disk.room = INT64_MAX;
    ASSERT_TRUE(WaitFor([&] { return w.room_for(t); }));
    w.write_anyway(dest, numbered(200));
    expect += numbered(200);
    w.flush();
    EXPECT_EQ(slurp(path.string()), expect) << "every line once, in order, whole";
    ASSERT_TRUE(WaitFor([&] {
        run_posted(io);
        return ev.recovered() == 1;
    }));
    EXPECT_GE(drained, 1) << "the loop is told to resume the streams it stopped";
    EXPECT_EQ(ev.started(), 1);
    EXPECT_EQ(ev.lost(), 0u);
    EXPECT_EQ(ev.errors(), w.write_errors());
}

TEST(LogWriter, AFullDiskUnderDropLosesOnlyWhatItCountsAndTearsNoLine) {
    TempDir d;
    boost::asio::io_context io;
    Disk disk;
    disk.room = 1000;
    LogWriter w(io, 8u << 20, disk.fn());
    Events ev;
    ev.attach(w);
    const auto path = d.path / "pool.out";
    const int t = w.file_target(path.string(), 0, 0);
    const LogWriter::Dest dest(t, 5, false);
    int sent = 0;
    std::uint64_t refused = 0;
    auto send = [&] { refused += !w.write(dest, numbered(sent++)); };
    for (int i = 0; i < 2000; ++i)
        send();
    w.flush();
    EXPECT_TRUE(w.room_for(t)) << "drop never stops a stream";
    // Room again: the file takes lines once a retry is due.
    disk.room = INT64_MAX;
    ASSERT_TRUE(WaitFor([&] {
        send();
        w.flush();
        run_posted(io);
        return ev.recovered() == 1;
    }));
    for (int i = 0; i < 10; ++i)
        send();
    w.flush();
    run_posted(io);
    // What arrived: whole lines of what was sent, in order, none twice.
    std::istringstream in(slurp(path.string()));
    std::uint64_t arrived = 0;
    int last = -1;
    for (std::string l; std::getline(in, l); ++arrived) {
        const int i = std::stoi(l.substr(5));
        ASSERT_EQ(l + "\n", numbered(i)) << "a torn line";
        ASSERT_GT(i, last);
        last = i;
    }
    EXPECT_EQ(last, sent - 1) << "the lines after recovery arrived";
    EXPECT_GE(ev.lost(), 1u) << "the write that failed lost its line";
    EXPECT_EQ(arrived + refused + ev.lost(), static_cast<std::uint64_t>(sent))
        << "arrived " << arrived << ", refused " << refused << ", lost " << ev.lost();
    EXPECT_EQ(ev.started(), 1);
    for (const auto& e : ev.all)
        EXPECT_EQ(e.account, 5u);
}

// A write cut short where the file cannot be cut back (a FIFO, stdout): under block the line
// is completed; under drop the next line still starts on a line of its own.
struct CutOnce {
    std::atomic<int> calls{0};
    LogWriter::WriteFn fn() {
        return [this](int fd, const iovec* iov, int n) -> ssize_t {
            const int c = calls++;
            if (c == 1) return ::write(fd, iov[0].iov_base, 3);  // "bra" of "bravo\n"
            if (c == 2) {
                errno = EPIPE;
                return -1;
            }
            return ::writev(fd, iov, n);
        };
    }
};

std::string through_fifo(bool keep) {
    TempDir d;
    boost::asio::io_context io;
    const auto fifo = d.path / "pool.out";
    EXPECT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    const int reader = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    EXPECT_GE(reader, 0);
    CutOnce cut;
    std::string got;
    {
        LogWriter w(io, 8u << 20, cut.fn());
        const int t = w.file_target(fifo.string(), 0, 0);
        const LogWriter::Dest dest(t, 0, keep);
        w.write_anyway(dest, "alpha\n");
        w.flush();
        w.write_anyway(dest, "bravo\n");
        w.flush();
        // Accepted once the file is due for a retry (drop), or held behind bravo (block).
        EXPECT_TRUE(WaitFor([&] { return w.write(dest, "charlie\n"); }));
        EXPECT_TRUE(WaitFor([&] {
            w.flush();
            return w.room_for(t);
        }));
    }
    char buf[256];
    for (ssize_t n; (n = ::read(reader, buf, sizeof buf)) > 0;)
        got.append(buf, static_cast<std::size_t>(n));
    ::close(reader);
    return got;
}

TEST(LogWriter, ALineCutShortWhereItCannotBeCutBackIsCompletedUnderBlock) {
    EXPECT_EQ(through_fifo(true), "alpha\nbravo\ncharlie\n");
}

TEST(LogWriter, ALineCutShortWhereItCannotBeCutBackIsEndedUnderDrop) {
    EXPECT_EQ(through_fifo(false), "alpha\nbra\ncharlie\n")
        << "the next line does not join the cut one";
}

TEST(LogWriter, ReopenNamesEachFileItCannotOpenAndTheHeldLinesFollowOnceItCan) {
    TempDir d;
    boost::asio::io_context io;
    LogWriter w(io);
    Events ev;
    ev.attach(w);
    const auto sub = d.path / "sub";
    const auto path = sub / "pool.out";
    const int t = w.file_target(path.string(), 0, 0);
    w.write_anyway(t, "one\n");
    w.flush();
    ASSERT_EQ(slurp(path.string()), "one\n");
    // The directory goes, and a regular file takes its name: nothing can be opened there.
    fs::remove_all(sub);
    std::ofstream(sub.string()) << "not a directory";
    std::optional<std::vector<std::string>> failed;
    w.reopen([&](std::vector<std::string> f) { failed = std::move(f); });
    ASSERT_TRUE(WaitFor([&] {
        run_posted(io);
        return failed.has_value();
    }));
    ASSERT_EQ(failed->size(), 1u);
    EXPECT_EQ((*failed)[0], path.string() + ": Not a directory");
    w.write_anyway(t, "two\n");
    w.flush();
    EXPECT_FALSE(w.room_for(t)) << "held (block) until it can be opened";
    fs::remove(sub);
    ASSERT_TRUE(WaitFor([&] { return w.room_for(t); }));
    w.flush();
    EXPECT_EQ(slurp(path.string()), "two\n");
    ASSERT_TRUE(WaitFor([&] {
        run_posted(io);
        return ev.recovered() == 1;
    }));
    EXPECT_NE(ev.all.front().what.find("cannot open " + path.string()), std::string::npos);
}

config::Config with_file_sink(const std::string& log_dir, bool file = true) {
    config::Config cfg;
    cfg.daemon.log_dir = log_dir;
    config::PoolConfig pc;
    pc.name = "web";
    if (file) pc.stderr_sink.kind = config::OutputSink::Kind::file;
    cfg.pools.push_back(pc);
    return cfg;
}

TEST(LogDir, IsCreatedWhenAPoolWritesToAFile) {
    TempDir d;
    const auto dir = d.path / "a" / "b";
    EXPECT_EQ(prepare_log_dir(with_file_sink(dir.string())), "");
    EXPECT_TRUE(fs::is_directory(dir));
    EXPECT_EQ(prepare_log_dir(with_file_sink(dir.string())), "") << "and may exist already";
}

TEST(LogDir, ThatCannotBeCreatedIsASentenceWithThePathAndTheReason) {
    TempDir d;
    std::ofstream((d.path / "file").string()) << "x";
    const auto dir = d.path / "file" / "logs";
    EXPECT_EQ(prepare_log_dir(with_file_sink(dir.string())),
              "daemon.log_dir " + dir.string() + " cannot be created: Not a directory");
    EXPECT_EQ(prepare_log_dir(with_file_sink((d.path / "file").string())),
              "daemon.log_dir " + (d.path / "file").string() + " is not a directory");
    EXPECT_EQ(prepare_log_dir(with_file_sink("")),
              "pool \"web\" writes to a file, but daemon.log_dir is not set");
}

TEST(LogDir, IsLeftAloneWhenNoPoolWritesToAFile) {
    TempDir d;
    const auto dir = d.path / "unused";
    EXPECT_EQ(prepare_log_dir(with_file_sink(dir.string(), false)), "");
    EXPECT_FALSE(fs::exists(dir));
}

}  // namespace
