// The pure pieces of --deep attribution (pagemap decoding, pfn batching, the classification
// arithmetic), and deep_analyze over a fake /proc root with hand-made binary pagemap,
// kpagecount and kpageflags files. No processes.
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "core/proc/pagemap.hpp"

namespace cow::proc {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kUnit = std::uint64_t{4096} << kPssShift;

TEST(Pagemap, DecodesPresentEntries) {
    auto e = decode_pagemap(kPmPresent | kPmExclusive | kPmFileOrSharedAnon | 0x12345);
    EXPECT_TRUE(e.present);
    EXPECT_FALSE(e.swapped);
    EXPECT_TRUE(e.exclusive);
    EXPECT_TRUE(e.file_or_shared_anon);
    EXPECT_FALSE(e.soft_dirty);
    EXPECT_EQ(e.pfn, 0x12345u);

    // Bits 55..60 are flags or zero, never part of the pfn.
    auto top = decode_pagemap(kPmPresent | kPmSoftDirty | kPmPfnMask);
    EXPECT_TRUE(top.soft_dirty);
    EXPECT_EQ(top.pfn, kPmPfnMask);
}

TEST(Pagemap, DecodesSwapEntries) {
    // Bits 0-4 swap type, 5-54 swap offset.
    auto e = decode_pagemap(kPmSwapped | (std::uint64_t{777} << 5) | 3);
    EXPECT_FALSE(e.present);
    EXPECT_TRUE(e.swapped);
    EXPECT_EQ(e.swap_type, 3u);
    EXPECT_EQ(e.swap_offset, 777u);
    EXPECT_EQ(e.pfn, 0u);

    auto none = decode_pagemap(0);
    EXPECT_FALSE(none.present);
    EXPECT_FALSE(none.swapped);
}

TEST(Pagemap, FlagBits) {
    EXPECT_TRUE(has_flag(std::uint64_t{1} << kKpfZeroPage, kKpfZeroPage));
    EXPECT_FALSE(has_flag(std::uint64_t{1} << kKpfZeroPage, kKpfThp));
    EXPECT_EQ(kKpfZeroPage, 24);
    EXPECT_EQ(kKpfThp, 22);
}

TEST(PfnBatching, EmptyAndSingle) {
    EXPECT_TRUE(batch_pfns({}, 8, 100).empty());
    std::vector<std::uint64_t> one{42};
    EXPECT_EQ(batch_pfns(one, 8, 100), (std::vector<PfnRange>{{42, 1}}));
}

TEST(PfnBatching, ReadsThroughSmallGapsAndSplitsOnLargeOnes) {
    std::vector<std::uint64_t> pfns{10, 11, 12, 15, 20, 40, 41};
    // Gap 12 -> 15 is 2 unwanted frames, 15 -> 20 is 4: both read through with max_gap 4;
    // 20 -> 40 is 19: split.
    EXPECT_EQ(batch_pfns(pfns, 4, 1000), (std::vector<PfnRange>{{10, 11}, {40, 2}}));
    // max_gap 0: only adjacent frames merge.
    EXPECT_EQ(batch_pfns(pfns, 0, 1000),
              (std::vector<PfnRange>{{10, 3}, {15, 1}, {20, 1}, {40, 2}}));
}

TEST(PfnBatching, RespectsMaxLength) {
    std::vector<std::uint64_t> pfns;
    for (std::uint64_t p = 100; p < 110; ++p)
        pfns.push_back(p);
    EXPECT_EQ(batch_pfns(pfns, 4, 4), (std::vector<PfnRange>{{100, 4}, {104, 4}, {108, 2}}));
    EXPECT_EQ(batch_pfns(pfns, 4, 1).size(), 10u);
}

TEST(PfnBatching, CoversEveryPfnExactlyOnce) {
    std::mt19937_64 rng(7);
    std::vector<std::uint64_t> pfns;
    std::uint64_t p = 0;
    for (int i = 0; i < 5000; ++i) {
        p += 1 + rng() % 90;
        pfns.push_back(p);
    }
    auto ranges = batch_pfns(pfns, 32, 256);
    std::size_t j = 0;
    std::uint64_t prev_end = 0;
    for (const auto& r : ranges) {
        EXPECT_GE(r.first, prev_end);  // disjoint, ascending
        EXPECT_LE(r.count, 256u);
        ASSERT_LT(j, pfns.size());
        EXPECT_EQ(pfns[j], r.first);  // a range starts on a wanted pfn
        std::uint64_t last = r.first;
        while (j < pfns.size() && pfns[j] < r.first + r.count)
            last = pfns[j++];
        EXPECT_EQ(last, r.first + r.count - 1);  // and ends on one
        prev_end = r.first + r.count;
    }
    EXPECT_EQ(j, pfns.size());
    EXPECT_LT(ranges.size(), pfns.size());
}

// A synthetic pool: master (group -1), workers A (group 0, with a child A2) and B (group 1).
struct Synthetic {
    std::vector<MemberRole> roles{{-1, true}, {0, false}, {0, false}, {1, false}};
    enum { M, A, A2, B };
    std::vector<PageRef> refs;
    std::map<std::uint64_t, FrameInfo> frames;

    void frame(std::uint64_t pfn, std::uint64_t mapcount, std::vector<std::uint32_t> mappers,
               std::uint64_t flags = std::uint64_t{1} << kKpfAnon) {
        frames[pfn] = {mapcount, flags};
        for (auto m : mappers)
            refs.push_back({pfn, m});
    }
    DeepReport run() {
        // Order must not matter: shuffle.
        std::mt19937 rng(1);
        std::shuffle(refs.begin(), refs.end(), rng);
        return classify_refs(roles, refs, [&](std::uint64_t pfn) { return frames.at(pfn); });
    }
};

void expect_invariants(const DeepReport& r) {
    std::uint64_t pss = 0, uss = 0, rss = 0;
    for (const auto& p : r.procs) {
        EXPECT_EQ(p.private_pages + p.pool_shared_pages + p.outside_shared_pages, p.resident_pages);
        pss += p.pss_fixed;
        uss += p.private_pages;
        rss += p.resident_pages;
    }
    EXPECT_EQ(pss, r.pss_fixed);
    EXPECT_EQ(uss, r.uss_pages);
    EXPECT_EQ(rss, r.rss_pages);
    EXPECT_LE(r.uss_pages, r.pool_only_frames);
    EXPECT_LE(r.pool_only_frames, r.distinct_frames);
    EXPECT_LE(r.pss_fixed, r.distinct_frames * kUnit);
    EXPECT_EQ(r.outside_frames, r.distinct_frames - r.pool_only_frames);
    EXPECT_LE(r.distinct_frames, r.rss_pages);
    std::uint64_t group_pss = 0;
    for (const auto& g : r.groups)
        group_pss += g.pss_fixed;
    EXPECT_EQ(group_pss, r.pss_fixed);
}

TEST(DeepClassify, PrivateSharedAndOutside) {
    Synthetic s;
    s.frame(1, 1, {Synthetic::A});                                             // A private
    s.frame(2, 1, {Synthetic::B});                                             // B private
    s.frame(3, 4, {Synthetic::M, Synthetic::A, Synthetic::A2, Synthetic::B});  // COW, all
    s.frame(4, 2, {Synthetic::M, Synthetic::B});                               // B with master
    s.frame(5, 3, {Synthetic::A, Synthetic::B});                               // libc: one outsider
    s.frame(6, 2, {Synthetic::A, Synthetic::A2});                              // within A's subtree
    s.frame(7, 2, {Synthetic::A, Synthetic::A});                               // A maps it twice
    auto r = s.run();
    ASSERT_EQ(r.status, ReadStatus::ok);
    ASSERT_EQ(r.procs.size(), 4u);
    expect_invariants(r);

    EXPECT_EQ(r.distinct_frames, 7u);
    EXPECT_EQ(r.pool_only_frames, 6u);
    EXPECT_EQ(r.outside_frames, 1u);
    EXPECT_EQ(r.pool_shared_frames, 4u);  // 3, 4, 6, 7
    EXPECT_EQ(r.rss_pages, 14u);
    EXPECT_EQ(r.saved_within_pool_pages(), 7u);
    EXPECT_EQ(r.anomalies, 0u);

    const auto& m = r.procs[Synthetic::M];
    EXPECT_TRUE(m.master);
    EXPECT_EQ(m.resident_pages, 2u);
    EXPECT_EQ(m.pool_shared_pages, 2u);
    EXPECT_EQ(m.with_master_pages, 0u);
    EXPECT_EQ(m.with_siblings_pages, 2u);  // for the master: shared with any worker
    EXPECT_EQ(m.with_group_pages, 0u);
    EXPECT_EQ(m.pss_fixed, kUnit / 4 + kUnit / 2);

    const auto& a = r.procs[Synthetic::A];
    EXPECT_EQ(a.resident_pages, 6u);  // 1, 3, 5, 6, 7 twice
    EXPECT_EQ(a.private_pages, 1u);
    EXPECT_EQ(a.pool_shared_pages, 4u);     // 3, 6, 7 twice
    EXPECT_EQ(a.outside_shared_pages, 1u);  // 5
    EXPECT_EQ(a.with_master_pages, 1u);     // 3
    EXPECT_EQ(a.with_siblings_pages, 2u);   // 3 (B), 5 (B)
    EXPECT_EQ(a.with_group_pages, 2u);      // 3 (A2), 6 (A2); not 7 (itself)
    EXPECT_EQ(a.pss_fixed, kUnit + kUnit / 4 + kUnit / 3 + kUnit / 2 + 2 * (kUnit / 2));

    const auto& a2 = r.procs[Synthetic::A2];
    EXPECT_EQ(a2.resident_pages, 2u);
    EXPECT_EQ(a2.with_group_pages, 2u);
    EXPECT_EQ(a2.with_siblings_pages, 1u);  // 3 only
    EXPECT_EQ(a2.with_master_pages, 1u);

    const auto& b = r.procs[Synthetic::B];
    EXPECT_EQ(b.resident_pages, 4u);
    EXPECT_EQ(b.private_pages, 1u);
    EXPECT_EQ(b.with_master_pages, 2u);    // 3, 4
    EXPECT_EQ(b.with_siblings_pages, 2u);  // 3, 5 (A); not 4 (only the master)
    EXPECT_EQ(b.with_group_pages, 0u);
    EXPECT_EQ(b.outside_shared_pages, 1u);

    // Groups in ascending order: -1, 0, 1.
    ASSERT_EQ(r.groups.size(), 3u);
    EXPECT_EQ(r.groups[0].group, -1);
    EXPECT_EQ(r.groups[1].group, 0);
    EXPECT_EQ(r.groups[2].group, 1);
    EXPECT_EQ(r.groups[1].frames, 5u);             // 1, 3, 5, 6, 7
    EXPECT_EQ(r.groups[1].group_only_frames, 3u);  // 1, 6, 7: what stopping worker A frees
    EXPECT_EQ(r.groups[2].group_only_frames, 1u);  // 2
    EXPECT_EQ(r.groups[0].group_only_frames, 0u);
}

TEST(DeepClassify, ZeroPageHugetlbAndSpecialAreSkipped) {
    Synthetic s;
    s.frame(1, 1, {Synthetic::A});
    s.frame(9, 1000, {Synthetic::A, Synthetic::A, Synthetic::B}, std::uint64_t{1} << kKpfZeroPage);
    s.frame(10, 2, {Synthetic::A, Synthetic::B}, std::uint64_t{1} << kKpfHuge);
    s.frame(11, 0, {Synthetic::B}, std::uint64_t{1} << kKpfNoPage);
    auto r = s.run();
    expect_invariants(r);
    EXPECT_EQ(r.distinct_frames, 1u);
    EXPECT_EQ(r.zero_pages, 3u);
    EXPECT_EQ(r.procs[Synthetic::A].zero_pages, 2u);
    EXPECT_EQ(r.procs[Synthetic::A].hugetlb_pages, 1u);
    EXPECT_EQ(r.procs[Synthetic::A].resident_pages, 1u);
    EXPECT_EQ(r.procs[Synthetic::B].special_pages, 1u);
    EXPECT_EQ(r.procs[Synthetic::B].resident_pages, 0u);
    EXPECT_EQ(r.anomalies, 0u);
}

TEST(DeepClassify, ThpSubpagesCountPerFourKiB) {
    // A PMD-mapped THP shared by master and B after B wrote one subpage: kpagecount is per
    // 4 KiB page, so 511 subpages have mapcount 2 and B's copy is a separate 4 KiB frame.
    Synthetic s;
    const std::uint64_t thp = (std::uint64_t{1} << kKpfThp) | (std::uint64_t{1} << kKpfAnon);
    for (std::uint64_t i = 0; i < 512; ++i)
        s.frame(4096 + i, i == 7 ? 1 : 2,
                i == 7 ? std::vector<std::uint32_t>{Synthetic::M}
                       : std::vector<std::uint32_t>{Synthetic::M, Synthetic::B},
                thp);
    s.frame(77, 1, {Synthetic::B});
    auto r = s.run();
    expect_invariants(r);
    EXPECT_EQ(r.distinct_frames, 513u);
    EXPECT_EQ(r.thp_frames, 512u);
    EXPECT_EQ(r.procs[Synthetic::B].private_pages, 1u);
    EXPECT_EQ(r.procs[Synthetic::B].pool_shared_pages, 511u);
    EXPECT_EQ(r.procs[Synthetic::M].private_pages, 1u);
    EXPECT_EQ(r.pss_fixed, 513 * kUnit);  // nothing outside: ΣPSS = D
}

TEST(DeepClassify, AnomaliesAreCountedAndClamped) {
    Synthetic s;
    s.frame(1, 1, {Synthetic::A, Synthetic::B});  // remapped during the walk: g 2 > m 1
    s.frame(2, 0, {Synthetic::B});                // freed during the walk
    auto r = s.run();
    expect_invariants(r);
    EXPECT_EQ(r.anomalies, 2u);
    EXPECT_EQ(r.procs[Synthetic::A].anomalies, 1u);
    EXPECT_EQ(r.procs[Synthetic::B].anomalies, 2u);
    EXPECT_EQ(r.procs[Synthetic::A].pool_shared_pages, 1u);  // clamped to m = g = 2
    EXPECT_EQ(r.procs[Synthetic::A].pss_fixed, kUnit / 2);
    EXPECT_EQ(r.procs[Synthetic::B].private_pages, 1u);
}

TEST(DeepClassify, NoOutsidersMeansPssEqualsDistinctEqualsPoolOnly) {
    Synthetic s;
    std::mt19937_64 rng(3);
    for (std::uint64_t pfn = 1; pfn < 2000; ++pfn) {
        std::vector<std::uint32_t> who;
        for (std::uint32_t m = 0; m < 4; ++m)
            if (rng() % 2) who.push_back(m);
        if (who.empty()) continue;
        s.frame(pfn, who.size(), who);
    }
    auto r = s.run();
    expect_invariants(r);
    EXPECT_EQ(r.outside_frames, 0u);
    EXPECT_EQ(r.pool_only_frames, r.distinct_frames);
    // ΣPSS = D up to fixed-point truncation (< 1 unit of 2^-12 bytes per mapping).
    EXPECT_LE(r.distinct_frames * kUnit - r.pss_fixed, r.rss_pages);
}

TEST(DeepClassify, RandomPoolsKeepTheInvariants) {
    std::mt19937_64 rng(11);
    for (int round = 0; round < 20; ++round) {
        const std::uint32_t n = 1 + static_cast<std::uint32_t>(rng() % 40);
        std::vector<MemberRole> roles;
        for (std::uint32_t i = 0; i < n; ++i)
            roles.push_back({static_cast<int>(rng() % 5) - 1, i == 0});
        std::vector<PageRef> refs;
        std::map<std::uint64_t, FrameInfo> frames;
        for (std::uint64_t pfn = 1; pfn < 500; ++pfn) {
            std::uint64_t g = 0;
            for (std::uint32_t m = 0; m < n; ++m) {
                if (rng() % 4 == 0) {
                    refs.push_back({pfn, m});
                    ++g;
                }
            }
            frames[pfn] = {g + rng() % 3, 0};  // sometimes outsiders
        }
        auto r = classify_refs(roles, refs, [&](std::uint64_t pfn) { return frames.at(pfn); });
        expect_invariants(r);
        EXPECT_EQ(r.anomalies, 0u);
        EXPECT_EQ(r.rss_pages, refs.size());
    }
}

// ---- deep_analyze over a fake root ----

// Past the last page of the VMAs in kMaps.
constexpr std::uint64_t kLastVpage = 0x7f0000010;

struct FakeRoot {
    fs::path dir;
    FakeRoot() {
        char tmpl[] = "/tmp/cowherd-pagemap-XXXXXX";
        dir = mkdtemp(tmpl);
        fs::create_directories(dir);
        // Empty files exist, so that pread past their end reads nothing.
        std::ofstream(dir / "kpagecount");
        std::ofstream(dir / "kpageflags");
    }
    ~FakeRoot() { fs::remove_all(dir); }

    static void put(const fs::path& file, std::uint64_t index, std::uint64_t value) {
        int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::pwrite(fd, &value, 8, static_cast<off_t>(index * 8)), 8);
        ::close(fd);
    }
    void frame(std::uint64_t pfn, std::uint64_t count, std::uint64_t flags = 0) {
        put(dir / "kpagecount", pfn, count);
        put(dir / "kpageflags", pfn, flags);
    }
    void process(pid_t pid, std::uint64_t starttime, const std::string& maps, char state = 'S') {
        fs::path p = dir / std::to_string(pid);
        fs::create_directories(p);
        std::ofstream(p / "stat") << pid << " (fake) " << state
                                  << " 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 " << starttime
                                  << " 1000000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 "
                                     "17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        std::ofstream(p / "maps") << maps;
        std::ofstream(p / "pagemap");
        // The real file covers the whole address space; make the fake one reach past the VMAs.
        put(p / "pagemap", kLastVpage, 0);
    }
    // Pagemap entry for virtual page `vpage` of `pid`.
    void page(pid_t pid, std::uint64_t vpage, std::uint64_t entry) {
        put(dir / std::to_string(pid) / "pagemap", vpage, entry);
    }
};

// Two 4-page VMAs at 0x400000 (vpage 0x400) and 0x7f0000000000.
const std::string kMaps =
    "00400000-00404000 r-xp 00000000 fe:00 12 /usr/bin/fake\n"
    "7f0000000000-7f0000004000 rw-p 00000000 00:00 0 \n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";
constexpr std::uint64_t kText = 0x400;
constexpr std::uint64_t kHeap = 0x7f0000000;

TEST(DeepAnalyze, FakeRootEndToEnd) {
    FakeRoot root;
    root.process(100, 5000, kMaps);  // master
    root.process(101, 5001, kMaps);  // worker 0
    root.process(102, 5002, kMaps);  // worker 1
    const std::uint64_t anon = std::uint64_t{1} << kKpfAnon;
    // Text: pfn 1000, mapped by all three and one outsider.
    root.frame(1000, 4);
    for (pid_t pid : {100, 101, 102})
        root.page(pid, kText, kPmPresent | 1000);
    // Heap: COW-shared pfn 2000-2001 (all three), privates 3000 / 3100 / 3200, zero page 5.
    root.frame(2000, 3, anon);
    root.frame(2001, 3, anon);
    root.frame(3000, 1, anon);
    root.frame(3100, 1, anon);
    root.frame(3200, 1, anon);
    root.frame(5, 900, std::uint64_t{1} << kKpfZeroPage);
    for (pid_t pid : {100, 101, 102}) {
        root.page(pid, kHeap, kPmPresent | 2000);
        root.page(pid, kHeap + 1, kPmPresent | 2001);
        root.page(pid, kHeap + 3, kPmPresent | 5);
    }
    root.page(100, kHeap + 2, kPmPresent | 3000);
    root.page(101, kHeap + 2, kPmPresent | 3100);
    root.page(102, kHeap + 2, kPmPresent | 3200);
    root.page(102, kText + 3, kPmSwapped | (9 << 5) | 1);

    DeepOptions opt;
    opt.proc_root = root.dir.string();
    opt.master = 100;
    opt.max_gap = 150;      // 2000..2001 and 3000..3200 batch; 5 and 1000 stand alone
    opt.pagemap_chunk = 3;  // forces several preads per VMA
    auto r = deep_analyze({{101, 0, 5001}, {102, 1, 0}}, opt);
    ASSERT_EQ(r.status, ReadStatus::ok) << r.error;
    ASSERT_EQ(r.procs.size(), 3u);  // the master was appended
    EXPECT_EQ(r.procs[2].pid, 100);
    EXPECT_TRUE(r.procs[2].master);
    EXPECT_EQ(r.procs[2].group, kMasterGroup);
    for (const auto& p : r.procs)
        EXPECT_EQ(p.status, ReadStatus::ok) << p.pid;
    expect_invariants(r);

    EXPECT_EQ(r.pages_read, 3u * 8u);  // vsyscall skipped
    EXPECT_EQ(r.kpage_reads, 4u);      // {5}, {1000}, {2000-2001}, {3000..3200}
    EXPECT_EQ(r.distinct_frames, 6u);
    EXPECT_EQ(r.pool_only_frames, 5u);
    EXPECT_EQ(r.outside_frames, 1u);
    EXPECT_EQ(r.anon_frames, 5u);
    EXPECT_EQ(r.file_frames, 1u);
    EXPECT_EQ(r.zero_pages, 3u);
    EXPECT_EQ(r.swapped_pages, 1u);
    EXPECT_EQ(r.distinct_swap_slots, 1u);
    EXPECT_EQ(r.anomalies, 0u);

    const auto& w0 = r.procs[0];
    EXPECT_EQ(w0.pid, 101);
    EXPECT_EQ(w0.resident_pages, 4u);
    EXPECT_EQ(w0.private_pages, 1u);
    EXPECT_EQ(w0.pool_shared_pages, 2u);
    EXPECT_EQ(w0.outside_shared_pages, 1u);
    EXPECT_EQ(w0.with_master_pages, 3u);
    EXPECT_EQ(w0.with_siblings_pages, 3u);
    EXPECT_EQ(w0.zero_pages, 1u);
    EXPECT_EQ(w0.pss_fixed, kUnit + 2 * (kUnit / 3) + kUnit / 4);
    EXPECT_EQ(r.procs[1].swapped_pages, 1u);
}

TEST(DeepAnalyze, GoneReusedAndHiddenMembers) {
    FakeRoot root;
    root.process(200, 10, kMaps);
    root.process(201, 11, kMaps);
    root.process(202, 12, kMaps, 'Z');
    root.process(203, 13, kMaps);
    root.frame(1000, 2);
    root.page(200, kText, kPmPresent | 1000);
    root.page(201, kText, kPmPresent | 1000);
    root.page(203, kText, kPmPresent | 0);  // pfn hidden: no CAP_SYS_ADMIN

    DeepOptions opt;
    opt.proc_root = root.dir.string();
    auto r = deep_analyze(
        {{200, 0, 0}, {201, 1, 99}, {202, 2, 0}, {203, 3, 0}, {204, 4, 0}, {200, 5, 0}}, opt);
    ASSERT_EQ(r.status, ReadStatus::ok) << r.error;
    ASSERT_EQ(r.procs.size(), 6u);
    EXPECT_EQ(r.procs[0].status, ReadStatus::ok);
    EXPECT_EQ(r.procs[1].status, ReadStatus::gone);  // starttime differs: pid reused
    EXPECT_EQ(r.procs[2].status, ReadStatus::gone);  // zombie
    EXPECT_EQ(r.procs[3].status, ReadStatus::unreadable);
    EXPECT_EQ(r.procs[3].err, EPERM);
    EXPECT_EQ(r.procs[4].status, ReadStatus::gone);   // no such pid
    EXPECT_EQ(r.procs[5].status, ReadStatus::error);  // listed twice
    EXPECT_EQ(r.procs[5].err, EINVAL);
    // Only 200's mapping is left; kpagecount says 2, so the other one is an outsider's.
    EXPECT_EQ(r.procs[0].resident_pages, 1u);
    EXPECT_EQ(r.procs[0].outside_shared_pages, 1u);
    EXPECT_EQ(r.distinct_frames, 1u);
    EXPECT_EQ(r.outside_frames, 1u);
    for (std::size_t i = 1; i < r.procs.size(); ++i)
        EXPECT_EQ(r.procs[i].resident_pages, 0u);
}

TEST(DeepAnalyze, MissingKpagecountFailsTheReport) {
    FakeRoot root;
    fs::remove(root.dir / "kpagecount");
    root.process(300, 1, kMaps);
    DeepOptions opt;
    opt.proc_root = root.dir.string();
    auto r = deep_analyze({{300, 0, 0}}, opt);
    EXPECT_EQ(r.status, ReadStatus::error);
    EXPECT_EQ(r.err, ENOENT);
    EXPECT_NE(r.error.find("kpagecount"), std::string::npos);
    ASSERT_EQ(r.procs.size(), 1u);
    EXPECT_EQ(r.procs[0].status, ReadStatus::error);
}

TEST(DeepAnalyze, WithoutPagemapScanReadsWholeVmas) {
    // A regular file has no PAGEMAP_SCAN ioctl (ENOTTY), like kernels before 6.7.
    FakeRoot root;
    root.process(500, 1, kMaps);
    root.frame(10, 1);
    root.frame(11, 1);
    root.page(500, kText + 2, kPmPresent | 10);
    root.page(500, kHeap + 1, kPmPresent | 11);
    DeepOptions opt;
    opt.proc_root = root.dir.string();
    opt.scan_min_pages = 1;
    auto r = deep_analyze({{500, 0, 0}}, opt);
    ASSERT_EQ(r.status, ReadStatus::ok) << r.error;
    EXPECT_EQ(r.scan_calls, 0u);
    EXPECT_EQ(r.pages_read, 8u);
    EXPECT_EQ(r.procs[0].private_pages, 2u);
}

TEST(DeepAnalyze, PagesBeyondTheEndOfMemoryAreNoPages) {
    FakeRoot root;
    root.process(400, 1, kMaps);
    root.frame(10, 1);
    root.page(400, kText, kPmPresent | 10);
    root.page(400, kText + 1, kPmPresent | 20);  // past the end of the fake kpage files
    DeepOptions opt;
    opt.proc_root = root.dir.string();
    auto r = deep_analyze({{400, 0, 0}}, opt);
    ASSERT_EQ(r.status, ReadStatus::ok) << r.error;
    EXPECT_EQ(r.procs[0].resident_pages, 1u);
    EXPECT_EQ(r.procs[0].special_pages, 1u);
}

}  // namespace
}  // namespace cow::proc
