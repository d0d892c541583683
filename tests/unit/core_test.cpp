// core/: units, signal names, wait-status decoding, names.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include "core/names.hpp"
#include "core/signal_names.hpp"
#include "core/units.hpp"
#include "core/wait_status.hpp"

using namespace cow;
using namespace std::chrono_literals;

TEST(Units, Durations) {
    EXPECT_EQ(parse_duration("100ms"), 100ms);
    EXPECT_EQ(parse_duration("10s"), 10s);
    EXPECT_EQ(parse_duration("1.5s"), 1500ms);
    EXPECT_EQ(parse_duration("5m"), 5min);
    EXPECT_EQ(parse_duration("2h"), 2h);
    EXPECT_EQ(parse_duration("1d"), 24h);
    EXPECT_EQ(parse_duration("0"), 0ms);
    EXPECT_EQ(parse_duration("0s"), 0ms);
    for (const char* bad : {"", "10", "s", "-1s", "1x", "1.2.3s", "ten", "1e3s", "99999999999d"})
        EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(Units, Sizes) {
    EXPECT_EQ(parse_size("512MiB"), 512ull << 20);
    EXPECT_EQ(parse_size("2GiB"), 2ull << 30);
    EXPECT_EQ(parse_size("64KiB"), 64ull << 10);
    EXPECT_EQ(parse_size("1.5GiB"), 3ull << 29);
    EXPECT_EQ(parse_size("100MB"), 100'000'000ull);
    EXPECT_EQ(parse_size("4096"), 4096ull);
    EXPECT_EQ(parse_size("4096B"), 4096ull);
    for (const char* bad : {"", "MiB", "-1MiB", "1XB", "1 2MiB"})
        EXPECT_FALSE(parse_size(bad)) << bad;
}

TEST(Units, Formatting) {
    EXPECT_EQ(format_duration(250ms), "250ms");
    EXPECT_EQ(format_duration(12s), "12s");
    EXPECT_EQ(format_duration(200s), "3m20s");
    EXPECT_EQ(format_duration(2h + 5min), "2h05m");
    EXPECT_EQ(format_size(512), "512 B");
    EXPECT_EQ(format_size(1536), "1.50 KiB");
    EXPECT_EQ(format_size(512ull << 20), "512 MiB");
}

TEST(Signals, ParseAndName) {
    EXPECT_EQ(parse_signal("TERM"), SIGTERM);
    EXPECT_EQ(parse_signal("SIGTERM"), SIGTERM);
    EXPECT_EQ(parse_signal("sigterm"), SIGTERM);
    EXPECT_EQ(parse_signal("15"), 15);
    EXPECT_EQ(parse_signal("HUP"), SIGHUP);
    EXPECT_EQ(parse_signal("usr1"), SIGUSR1);
    for (const char* bad : {"", "0", "65", "SIG", "NOPE", "1a", "-9"})
        EXPECT_FALSE(parse_signal(bad)) << bad;
    EXPECT_EQ(signal_name(SIGKILL), "KILL");
    EXPECT_EQ(signal_name(40), "SIG40");
}

TEST(WaitStatus, ExitCodesAndSignals) {
    // Encoded the way the kernel encodes them (glibc's W_EXITCODE and the core flag 0x80).
    ExitInfo e0 = decode_wait_status(W_EXITCODE(0, 0));
    EXPECT_TRUE(e0.success());
    EXPECT_EQ(describe(e0), "exited with status 0");
    ExitInfo e3 = decode_wait_status(W_EXITCODE(3, 0));
    EXPECT_EQ(e3.code, 3);
    EXPECT_EQ(e3.shell_code(), 3);
    EXPECT_FALSE(e3.signal);
    EXPECT_EQ(decode_wait_status(W_EXITCODE(255, 0)).shell_code(), 255);
    ExitInfo k = decode_wait_status(W_EXITCODE(0, SIGKILL));
    EXPECT_EQ(k.signal, SIGKILL);
    EXPECT_FALSE(k.code);
    EXPECT_FALSE(k.success());
    EXPECT_EQ(k.shell_code(), 137);
    EXPECT_EQ(describe(k), "killed by signal 9 (KILL)");
    ExitInfo core = decode_wait_status(W_EXITCODE(0, SIGSEGV) | 0x80);
    EXPECT_TRUE(core.core_dumped);
    EXPECT_EQ(describe(core), "killed by signal 11 (SEGV), core dumped");
}

TEST(Names, Validation) {
    EXPECT_TRUE(valid_name("web"));
    EXPECT_TRUE(valid_name("web-2_x.y"));
    EXPECT_FALSE(valid_name(""));
    EXPECT_FALSE(valid_name(std::string(65, 'a')));
    EXPECT_TRUE(valid_name(std::string(64, 'a')));
    EXPECT_FALSE(valid_name("a b"));
    EXPECT_FALSE(valid_name("a/b"));
    EXPECT_FALSE(valid_name("../x"));
    auto r = split_worker_name("web.12");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->pool, "web");
    EXPECT_EQ(r->index, 12);
    EXPECT_EQ(split_worker_name("a.b.3")->pool, "a.b");
    EXPECT_FALSE(split_worker_name("web"));
    EXPECT_FALSE(split_worker_name("web."));
    EXPECT_FALSE(split_worker_name(".3"));
    EXPECT_FALSE(split_worker_name("web.x"));
}
