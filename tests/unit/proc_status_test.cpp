#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "core/proc/status.hpp"

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

TEST(ProcStatus, ParsesCapturedSleep) {
    Status st = parse_status(slurp("sleep.status"));
    EXPECT_EQ(st.name(), "sleep");
    EXPECT_EQ(st.state(), 'T');
    EXPECT_GT(st.ppid().value_or(0), 0);
    ASSERT_TRUE(st.uid());
    ASSERT_TRUE(st.groups());
    EXPECT_TRUE(st.groups()->empty());  // "Groups:\t \n"
    ASSERT_TRUE(st.vm_rss());
    EXPECT_EQ(*st.vm_rss() % 1024, 0u);
    EXPECT_EQ(*st.vm_rss(), *st.rss_anon() + *st.rss_file() + *st.rss_shmem());
    EXPECT_EQ(st.vm_swap(), 0u);
    EXPECT_EQ(st.threads(), 1u);
    EXPECT_EQ(st.no_new_privs(), false);
    EXPECT_TRUE(st.cap_eff());
    EXPECT_EQ(st.fields.front().first, "Name");  // file order kept
}

TEST(ProcStatus, TypedAccessors) {
    Status st = parse_status(
        "Name:\tmy worker: 1\n"
        "Umask:\t0022\n"
        "State:\tS (sleeping)\n"
        "PPid:\t4321\n"
        "Uid:\t1000\t1001\t1002\t1003\n"
        "Gid:\t33\t33\t33\t33\n"
        "Groups:\t4 24 27 1000 \n"
        "VmRSS:\t   12345 kB\n"
        "RssAnon:\t    100 kB\n"
        "RssFile:\t    200 kB\n"
        "RssShmem:\t      3 kB\n"
        "VmSwap:\t      7 kB\n"
        "Threads:\t17\n"
        "CapEff:\t000001fffeffffff\n"
        "NoNewPrivs:\t1\n"
        "Brand_New_Field:\tsomething\n");
    EXPECT_EQ(st.name(), "my worker: 1");
    EXPECT_EQ(st.state(), 'S');
    EXPECT_EQ(st.ppid(), 4321);
    EXPECT_EQ(st.uid(), (std::array<std::uint32_t, 4>{1000, 1001, 1002, 1003}));
    EXPECT_EQ(st.gid(), (std::array<std::uint32_t, 4>{33, 33, 33, 33}));
    EXPECT_EQ(st.groups(), (std::vector<std::uint32_t>{4, 24, 27, 1000}));
    EXPECT_EQ(st.vm_rss(), 12345u * 1024);
    EXPECT_EQ(st.rss_anon(), 100u * 1024);
    EXPECT_EQ(st.rss_file(), 200u * 1024);
    EXPECT_EQ(st.rss_shmem(), 3u * 1024);
    EXPECT_EQ(st.vm_swap(), 7u * 1024);
    EXPECT_EQ(st.threads(), 17u);
    EXPECT_EQ(st.cap_eff(), 0x000001fffeffffffull);
    EXPECT_EQ(st.no_new_privs(), true);
    EXPECT_EQ(st.get("Brand_New_Field"), "something");
    EXPECT_EQ(st.get("Umask"), "0022");
}

TEST(ProcStatus, NameKeepsLeadingBlanksAndColons) {
    Status st = parse_status("Name:\t a:b\t\nState:\tR (running)\n");
    EXPECT_EQ(st.name(), " a:b\t");
}

TEST(ProcStatus, MissingOrMalformedReadAsNullopt) {
    Status st = parse_status(
        "garbage line\n"
        ":\tno key\n"
        "Uid:\t1000\t1000\n"
        "VmRSS:\t12 MB\n"
        "VmSwap:\tx kB\n"
        "Groups:\t1 two\n"
        "CapEff:\txyz\n"
        "NoNewPrivs:\t2\n"
        "PPid:\t-\n");
    EXPECT_EQ(st.fields.size(), 7u);
    EXPECT_FALSE(st.name());
    EXPECT_FALSE(st.state());
    EXPECT_FALSE(st.uid());
    EXPECT_FALSE(st.vm_rss());
    EXPECT_FALSE(st.vm_swap());
    EXPECT_FALSE(st.groups());
    EXPECT_FALSE(st.cap_eff());
    EXPECT_FALSE(st.no_new_privs());
    EXPECT_FALSE(st.ppid());
    EXPECT_FALSE(st.threads());
    EXPECT_TRUE(parse_status("").fields.empty());
}

TEST(ProcStatus, ParseKb) {
    EXPECT_EQ(parse_kb("0 kB"), 0u);
    EXPECT_EQ(parse_kb("   1732 kB"), 1732u * 1024);
    EXPECT_EQ(parse_kb("1 kB  "), 1024u);
    EXPECT_FALSE(parse_kb("1732"));
    EXPECT_FALSE(parse_kb("1732 kB extra"));
    EXPECT_FALSE(parse_kb("-1 kB"));
    EXPECT_FALSE(parse_kb("1732 KB"));
    EXPECT_FALSE(parse_kb(""));
    EXPECT_FALSE(parse_kb("18446744073709551615 kB"));  // would overflow as bytes
    EXPECT_EQ(parse_kb("18014398509481983 kB"), 18014398509481983ull * 1024);
}

}  // namespace
}  // namespace cow::proc
