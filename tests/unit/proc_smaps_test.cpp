#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "core/proc/smaps.hpp"

#ifndef COWHERD_TEST_DATA
#define COWHERD_TEST_DATA "/work/main/tests/data"
#endif

namespace cow::proc {
namespace {

constexpr std::uint64_t kKiB = 1024;

std::string slurp(const std::string& name) {
    std::ifstream in(std::string(COWHERD_TEST_DATA) + "/proc/" + name, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

TEST(ProcSmapsRollup, ParsesCapturedSelf) {
    SmapsIssues issues;
    auto c = parse_smaps_rollup(slurp("self.smaps_rollup"), &issues);
    ASSERT_TRUE(c);
    EXPECT_EQ(issues.skipped_lines, 0u) << issues.first_skipped;
    EXPECT_GT(c->rss, 0u);
    EXPECT_EQ(c->rss % kKiB, 0u);
    EXPECT_LE(c->pss, c->rss);
    EXPECT_EQ(c->rss, c->shared_clean + c->shared_dirty + c->private_clean + c->private_dirty);
    EXPECT_EQ(c->uss(), c->private_clean + c->private_dirty);
    // This kernel (6.18) reports the 5.3+ split and 6.0+ Pss_Dirty.
    EXPECT_TRUE(c->has("Pss_Anon"));
    EXPECT_TRUE(c->has("Pss_Dirty"));
    EXPECT_EQ(c->pss, c->pss_anon + c->pss_file + c->pss_shmem);
    EXPECT_TRUE(c->extra.empty());  // KSM is known too
}

TEST(ProcSmapsRollup, CapturedSleepExactValues) {
    auto c = parse_smaps_rollup(slurp("sleep.smaps_rollup"));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->rss, 1804 * kKiB);
    EXPECT_EQ(c->pss, 425 * kKiB);
    EXPECT_EQ(c->pss_dirty, 108 * kKiB);
    EXPECT_EQ(c->pss_anon, 108 * kKiB);
    EXPECT_EQ(c->pss_file, 317 * kKiB);
    EXPECT_EQ(c->shared_clean, 1660 * kKiB);
    EXPECT_EQ(c->private_clean, 36 * kKiB);
    EXPECT_EQ(c->private_dirty, 108 * kKiB);
    EXPECT_EQ(c->uss(), 144 * kKiB);
    EXPECT_EQ(c->swap_pss, 0u);
    EXPECT_TRUE(c->has("SwapPss"));
}

TEST(ProcSmapsRollup, KeepsUnknownFieldsAndToleratesOldKernels) {
    // A 4.14-era rollup: no Pss_Anon/File/Shmem, no Pss_Dirty; plus a field from the future.
    auto c = parse_smaps_rollup(
        "00400000-ffffffffff601000 ---p 00000000 00:00 0                  [rollup]\n"
        "Rss:                 884 kB\n"
        "Pss:                 385 kB\n"
        "Shared_Clean:        696 kB\n"
        "Shared_Dirty:          0 kB\n"
        "Private_Clean:        72 kB\n"
        "Private_Dirty:       116 kB\n"
        "FooBar:               12 kB\n"
        "Swap:                  0 kB\n"
        "SwapPss:               0 kB\n"
        "Locked:              385 kB\n");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->rss, 884 * kKiB);
    EXPECT_EQ(c->locked, 385 * kKiB);
    EXPECT_FALSE(c->has("Pss_Anon"));
    EXPECT_EQ(c->pss_anon, 0u);
    EXPECT_EQ(c->get("FooBar"), 12 * kKiB);
    ASSERT_EQ(c->extra.size(), 1u);
    EXPECT_EQ(c->extra[0].first, "FooBar");
}

TEST(ProcSmapsRollup, HeaderOptionalGarbageReported) {
    SmapsIssues issues;
    auto c = parse_smaps_rollup("Rss: 8 kB\nnonsense\nPss: x kB\nPss: 4 kB\n", &issues);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->rss, 8 * kKiB);
    EXPECT_EQ(c->pss, 4 * kKiB);
    EXPECT_EQ(issues.skipped_lines, 2u);
    EXPECT_EQ(issues.first_skipped, "nonsense");
}

TEST(ProcSmapsRollup, NotARollupIsNullopt) {
    EXPECT_FALSE(parse_smaps_rollup(""));
    EXPECT_FALSE(parse_smaps_rollup("\n\n"));
    EXPECT_FALSE(parse_smaps_rollup("00400000-ffffffffff601000 ---p 00000000 00:00 0 [rollup]\n"));
    EXPECT_FALSE(parse_smaps_rollup("Pss: 4 kB\n"));
    EXPECT_FALSE(parse_smaps_rollup(std::string("\0\0\0\xff", 4)));
}

TEST(ProcSmaps, ParsesCapturedSleep) {
    SmapsIssues issues;
    auto maps = parse_smaps(slurp("sleep.smaps"), &issues);
    EXPECT_EQ(issues.skipped_lines, 0u) << issues.first_skipped;
    ASSERT_EQ(maps.size(), 37u);
    const Mapping& first = maps.front();
    EXPECT_EQ(first.perms, "r--p");
    EXPECT_EQ(first.pathname, "/usr/bin/sleep");
    EXPECT_EQ(first.size, first.end - first.start);
    EXPECT_EQ(first.kernel_page_size, 4 * kKiB);
    EXPECT_EQ(first.vmflags.substr(0, 2), "rd");
    for (const auto& m : maps) {
        EXPECT_LT(m.start, m.end);
        EXPECT_EQ(m.size, m.end - m.start) << m.pathname;
        EXPECT_EQ(m.perms.size(), 4u);
        EXPECT_TRUE(m.counters.has("Rss")) << m.pathname;
        EXPECT_FALSE(m.vmflags.empty()) << m.pathname;
        EXPECT_TRUE(m.counters.extra.empty()) << m.counters.extra.front().first;
    }
    int heaps = 0, anon = 0;
    for (const auto& m : maps) {
        heaps += m.pathname == "[heap]";
        anon += m.pathname.empty();
    }
    EXPECT_EQ(heaps, 1);
    EXPECT_GE(anon, 1);
}

// Taken from one SIGSTOPped process, read back to back (tests/data/proc/capture.sh).
TEST(ProcSmaps, SumMatchesRollupOfTheSameProcess) {
    auto maps = parse_smaps(slurp("sleep.smaps"));
    auto rollup = parse_smaps_rollup(slurp("sleep.smaps_rollup"));
    ASSERT_TRUE(rollup);
    MemCounters total = sum(maps);
    // Page-counted fields agree exactly.
    EXPECT_EQ(total.rss, rollup->rss);
    EXPECT_EQ(total.shared_clean, rollup->shared_clean);
    EXPECT_EQ(total.shared_dirty, rollup->shared_dirty);
    EXPECT_EQ(total.private_clean, rollup->private_clean);
    EXPECT_EQ(total.private_dirty, rollup->private_dirty);
    EXPECT_EQ(total.uss(), rollup->uss());
    EXPECT_EQ(total.referenced, rollup->referenced);
    EXPECT_EQ(total.anonymous, rollup->anonymous);
    EXPECT_EQ(total.swap, rollup->swap);
    // PSS-like fields: each mapping's was truncated to whole kB, the rollup's only once.
    const std::uint64_t slack = maps.size() * kKiB;
    EXPECT_LE(total.pss, rollup->pss);
    EXPECT_GE(total.pss + slack, rollup->pss);
    EXPECT_LE(total.pss_dirty, rollup->pss_dirty);
    EXPECT_GE(total.pss_dirty + slack, rollup->pss_dirty);
    // The anon/file/shmem split exists only in the rollup.
    EXPECT_FALSE(total.has("Pss_Anon"));
    EXPECT_TRUE(rollup->has("Pss_Anon"));
}

TEST(ProcSmaps, AdversarialInput) {
    SmapsIssues issues;
    auto maps = parse_smaps(slurp("adversarial.smaps"), &issues);
    ASSERT_EQ(maps.size(), 7u);

    EXPECT_EQ(maps[0].pathname, "/opt/my app/bin/my server");
    EXPECT_EQ(maps[0].perms, "r-xp");
    EXPECT_EQ(maps[0].inode, 11u);
    EXPECT_EQ(maps[0].dev, "fe:00");
    EXPECT_EQ(maps[0].vmflags, "rd ex mr mw me");
    ASSERT_EQ(maps[0].attributes.size(), 1u);
    EXPECT_EQ(maps[0].attributes[0], (std::pair<std::string, std::string>{"THPeligible", "0"}));

    EXPECT_EQ(maps[1].pathname, "/opt/my app/lib/lib odd (x).so.2 (deleted)");
    EXPECT_TRUE(maps[1].deleted());
    EXPECT_EQ(maps[1].path(), "/opt/my app/lib/lib odd (x).so.2");
    EXPECT_EQ(maps[1].offset, 0x1000u);
    EXPECT_EQ(maps[1].counters.pss, 2 * kKiB);
    EXPECT_EQ(maps[1].counters.get("FooBar"), 12 * kKiB);

    EXPECT_GT(maps[2].pathname.size(), 3900u);
    EXPECT_TRUE(maps[2].pathname.ends_with("/libdeep.so.1"));
    EXPECT_EQ(maps[2].counters.rss, 8 * kKiB);

    // Only Rss present; the garbage after it is skipped, not credited.
    EXPECT_EQ(maps[3].pathname, "");
    EXPECT_EQ(maps[3].counters.rss, 4 * kKiB);
    EXPECT_FALSE(maps[3].counters.has("Pss"));
    EXPECT_EQ(maps[3].counters.private_dirty, 0u);

    EXPECT_EQ(maps[4].pathname, "/memfd:shared buf (deleted)");
    EXPECT_TRUE(maps[4].shared());
    // The damaged header's "Rss: 999 kB" went nowhere.
    EXPECT_EQ(maps[4].counters.rss, 4 * kKiB);

    EXPECT_EQ(maps[5].pathname, "[anon:my arena]");
    EXPECT_EQ(maps[6].pathname, "[stack]");
    EXPECT_EQ(maps[6].counters.rss, 4 * kKiB);
    EXPECT_FALSE(maps[6].counters.has("Pss"));  // "Pss: 4" was cut off

    // Lead-in field, garbage, "Pss 4 kB", "lots kB", damaged header, its Rss, "zz-8000",
    // and the cut-off last line.
    EXPECT_EQ(issues.skipped_lines, 8u);
    EXPECT_EQ(issues.first_skipped, "Rss:                  4 kB");

    MemCounters total = sum(maps);
    EXPECT_EQ(total.rss, (4 + 4 + 8 + 4 + 4 + 4 + 4) * kKiB);
    EXPECT_EQ(total.get("FooBar"), 12 * kKiB);
}

TEST(ProcSmaps, NeverCrashesOnPrefixesOrJunk) {
    // Every prefix of real and adversarial input parses to something without UB (ASan/UBSan
    // builds check the "without UB" part).
    // Every cut of the first mappings of a real file (a short read), every 11th of the crafted.
    std::string real = slurp("sleep.smaps").substr(0, 2048);
    for (std::size_t n = 0; n <= real.size(); ++n) {
        auto maps = parse_smaps(std::string_view(real).substr(0, n));
        EXPECT_LE(maps.size(), 3u);
    }
    std::string crafted = slurp("adversarial.smaps");
    for (std::size_t n = 0; n <= crafted.size(); n += 11) {
        SmapsIssues issues;
        auto maps = parse_smaps(std::string_view(crafted).substr(0, n), &issues);
        EXPECT_LE(maps.size(), 7u);
        EXPECT_LE(issues.skipped_lines, 9u);
    }
    for (const std::string& junk :
         std::vector<std::string>{"-", "--", "0-", "-0", "0-0", "0-0 rw-p", "0-0 rw-p 0 0:0",
                                  "1-0 rw-p 0 0:0 0", "0-0 rw-p 0 0:0 0 ", ":", "a:", ": kB",
                                  std::string(10000, 'f'), std::string("\0-\0", 3)}) {
        SmapsIssues issues;
        auto maps = parse_smaps(junk, &issues);
        EXPECT_LE(maps.size(), 1u) << junk;
        EXPECT_LE(issues.first_skipped.size(), 120u);
    }
    // The smallest valid header.
    auto maps = parse_smaps("0-0 rw-p 0 0:0 0");
    ASSERT_EQ(maps.size(), 1u);
    EXPECT_EQ(maps[0].pathname, "");
}

TEST(ProcMemCounters, AddSumAndEquality) {
    MemCounters a, b;
    a.add("Rss", 10);
    a.add("Private_Dirty", 4);
    a.add("Private_Clean", 2);
    a.add("FooBar", 1);
    b.add("Rss", 5);
    b.add("Pss_Anon", 3);
    b.add("FooBar", 2);
    b.add("Baz", 7);
    a += b;
    EXPECT_EQ(a.rss, 15u);
    EXPECT_EQ(a.uss(), 6u);
    EXPECT_EQ(a.pss_anon, 3u);
    EXPECT_TRUE(a.has("Pss_Anon"));
    EXPECT_FALSE(a.has("Pss_File"));
    EXPECT_EQ(a.get("FooBar"), 3u);
    EXPECT_EQ(a.get("Baz"), 7u);
    MemCounters doubled = a;
    doubled += doubled;
    EXPECT_EQ(doubled.rss, 30u);
    EXPECT_EQ(doubled.get("Baz"), 14u);
    EXPECT_NE(doubled, a);
    for (const auto& f : kMemFields) {
        MemCounters one;
        one.add(f.kernel_name, 1);
        EXPECT_EQ(one.*f.member, 1u) << f.kernel_name;
        EXPECT_TRUE(one.extra.empty()) << f.kernel_name;
    }
}

}  // namespace
}  // namespace cow::proc
