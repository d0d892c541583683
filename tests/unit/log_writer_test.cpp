// The log writer thread: targets added from the loop while it writes (a race once lost
// whole files), rotation by rename, and the capacity signal.
#include "daemon/log_writer.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

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

}  // namespace
