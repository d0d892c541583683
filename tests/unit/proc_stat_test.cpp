#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "core/proc/stat.hpp"

#ifndef COWHERD_TEST_DATA
#define COWHERD_TEST_DATA "/work/main/tests/data"
#endif

namespace cow::proc {
namespace {

std::string slurp(const std::string& name) {
    std::ifstream in(std::string(COWHERD_TEST_DATA) + "/proc/" + name, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// Fields 3..52 of a sleeping process; starttime 4242, vsize 8192, rss 3.
const std::string kTail =
    " S 1 77 77 0 -1 4194560 98 0 0 0 5 6 0 0 20 0 3 0 4242 8192 3 18446744073709551615 1 2 3 0 0 "
    "0 0 0 0 0 0 0 17 1 0 0 0 0 0 4 5 6 7 8 9 10 0\n";

TEST(ProcStat, ParsesCapturedSleep) {
    auto st = parse_stat(slurp("sleep.stat"));
    ASSERT_TRUE(st);
    EXPECT_EQ(st->comm, "sleep");
    EXPECT_EQ(st->state, 'T');  // captured while SIGSTOPped
    EXPECT_GT(st->pid, 0);
    EXPECT_GT(st->ppid, 0);
    EXPECT_GT(st->starttime, 0u);
    EXPECT_GT(st->vsize, 0u);
    EXPECT_GT(st->rss_pages, 0u);
    EXPECT_EQ(st->num_threads, 1);
    EXPECT_FALSE(is_kernel_thread(st->flags));
}

TEST(ProcStat, ReadsEveryField) {
    auto st = parse_stat("1234 (web)" + kTail);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->pid, 1234);
    EXPECT_EQ(st->comm, "web");
    EXPECT_EQ(st->state, 'S');
    EXPECT_EQ(st->ppid, 1);
    EXPECT_EQ(st->pgrp, 77);
    EXPECT_EQ(st->session, 77);
    EXPECT_EQ(st->flags, 4194560u);
    EXPECT_EQ(st->utime, 5u);
    EXPECT_EQ(st->stime, 6u);
    EXPECT_EQ(st->num_threads, 3);
    EXPECT_EQ(st->starttime, 4242u);
    EXPECT_EQ(st->vsize, 8192u);
    EXPECT_EQ(st->rss_pages, 3u);
}

TEST(ProcStat, CommMayHoldSpacesAndParens) {
    for (std::string comm :
         {"a b", "(a) (b)", ") (", "x) S 1 2 3 (y", "))", "((", "", " ", "a\nb", "web: master"}) {
        auto st = parse_stat("42 (" + comm + ")" + kTail);
        ASSERT_TRUE(st) << comm;
        EXPECT_EQ(st->comm, comm);
        EXPECT_EQ(st->ppid, 1) << comm;
        EXPECT_EQ(st->starttime, 4242u) << comm;
    }
}

TEST(ProcStat, RejectsMalformed) {
    std::string full = "42 (web)" + kTail;
    EXPECT_FALSE(parse_stat(""));
    EXPECT_FALSE(parse_stat("42"));
    EXPECT_FALSE(parse_stat("42 (web"));
    EXPECT_FALSE(parse_stat("42 web) S 1"));
    EXPECT_FALSE(parse_stat(") 42 ("));
    EXPECT_FALSE(parse_stat("x (web)" + kTail));
    EXPECT_FALSE(parse_stat("-1 (web)" + kTail));
    EXPECT_FALSE(parse_stat("42 (web) SS 1 77 77 0 -1 4194560 98 0 0 0 5 6 0 0 20 0 3 0 4242"));
    EXPECT_FALSE(parse_stat("42 (web) S one 77 77" + kTail.substr(10)));
    // Every truncation that loses a field up to rss (field 24) is an error, never garbage.
    auto rss_end = full.find(" 18446744073709551615");
    for (std::size_t n = 0; n < rss_end; ++n) {
        EXPECT_FALSE(parse_stat(full.substr(0, n))) << full.substr(0, n);
    }
    EXPECT_TRUE(parse_stat(full.substr(0, rss_end)));
}

TEST(ProcStat, KernelThreadFlag) {
    EXPECT_TRUE(is_kernel_thread(0x00208040));
    EXPECT_FALSE(is_kernel_thread(0x00400100));
    auto st = parse_stat(
        "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 24 0 0 "
        "18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 0 0 0 0 0 0 0 "
        "0 0 0 0 0 0 0");
    ASSERT_TRUE(st);
    EXPECT_TRUE(is_kernel_thread(st->flags));
    EXPECT_EQ(st->ppid, 0);
}

}  // namespace
}  // namespace cow::proc
