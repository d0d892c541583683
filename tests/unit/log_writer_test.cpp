// The log writer thread: targets added from the loop while it writes (a race once lost
// whole files), rotation by rename, the capacity signal, and read buffers queued whole.
#include "daemon/log_writer.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace cow;
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

}  // namespace
