// `--deep` memory attribution: which pages a pool member shares with whom (its master, its
// siblings, processes outside the pool), from /proc/PID/pagemap frame numbers and
// /proc/kpagecount + /proc/kpageflags, as the kernel's tools/mm/page-types does. Semantics:
// design §4 "--deep", shared/reference/memory.md §1.4. Root only (CAP_SYS_ADMIN for the frame
// numbers, kpagecount is mode 0400).
//
// Method: per member, /proc/PID/maps gives the VMAs; PAGEMAP_SCAN (6.7+) finds the populated
// ranges of large VMAs; pagemap is pread over those in chunks of 64 Ki entries; every present
// page yields a key (pfn << b | member), 8 bytes. The keys are radix-sorted; the distinct
// frames are batched into ranges (gaps of up to 2 frames are read through) so that kpagecount
// and kpageflags cost one pread per range, not per page. Then one pass over the sorted keys
// classifies each mapping.
//
// Cost, measured (Release, 2 vCPUs shared with other builds at load 2.6-4.5, kernel 6.18; a
// parent touching 256 MiB and 3 forked children, so 4 x 256 MiB resident and ~270 Ki pagemap
// entries; best of 5 per run, 12 runs; tests/process/pagemap_test.cpp DISABLED_Throughput):
//   children rewrote all of it (1 GiB distinct frames): 92-137 ms, 1.9-3.0 M pages/s
//   children only read it     (260 MiB distinct):      44-68 ms,  3.9-6.3 M pages/s
// (pages/s = pagemap entries per second). The walk is 14-24 ms (~60-80 ns per page; the
// PAGEMAP_SCAN pre-pass adds ~4 ms of it, and makes a 1 TiB sparse reservation cost 2 ms). The
// rest is the frames: kpagecount and kpageflags each cost ~100 ns per frame in the kernel
// however they are batched (so reading through gaps barely pays: 0-4 are within noise, 64 was
// 1.5x slower), plus 25-80 Ki preads each on fragmented memory; the sort ~4 ms. In short:
// ~70 ns per mapped page + ~250 ns per distinct frame. Memory: 8 bytes per mapped page of the
// pool, twice that while sorting.
//
// Caveats:
// - Not a snapshot. Pages can be remapped or freed between the pagemap read and the kpagecount
//   read; frames then have fewer kernel mappings than the pool holds (g > m): counted in
//   `anomalies` and clamped to m = g. A member that exits meanwhile is marked gone and excluded.
// - Swapped pages are counted (`swapped_pages`, `distinct_swap_slots`) but not attributed: the
//   kernel does not export swap-slot reference counts. Swapped shmem pages have no PTE at all
//   and are invisible here (smaps' Swap of a shmem VMA does include them).
// - With CONFIG_NO_PAGE_MAPCOUNT (6.15+, optional), kpagecount of a large folio is an average;
//   classification of THP and large page-cache folios is then approximate (memory.md §1.1).
//   Under CONFIG_PAGE_MAPCOUNT it is exact per 4 KiB page, THP included.
// - Members must be processes (thread group leaders), each listed once: two pids sharing one mm
//   (CLONE_VM without CLONE_THREAD) would count every mapping twice.
// - "Pool-only" (g == m) means no outsider maps the frame now. For anon and shmem that is memory
//   the pool's exit frees; file pages stay in the page cache after it.
// - Skipped as smaps skips them: the zero page and the huge zero page (KPF_ZERO_PAGE), pfns
//   without a struct page (PFN maps of device memory), hugetlbfs pages (outside Rss there).
// - Before 6.7 (no PAGEMAP_SCAN), huge sparse VMAs cost 8 bytes of pagemap per virtual page:
//   an ASan process (16+ TiB of shadow reservations) takes minutes.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <sys/types.h>

#include "core/proc/reader.hpp"

namespace cow::proc {

// ---- Kernel formats (Documentation/admin-guide/mm/pagemap.rst) ----

inline constexpr std::uint64_t kPmPresent = 1ull << 63;
inline constexpr std::uint64_t kPmSwapped = 1ull << 62;
inline constexpr std::uint64_t kPmFileOrSharedAnon = 1ull << 61;
inline constexpr std::uint64_t kPmExclusive = 1ull << 56;  // 4.2+: mapped exactly once
inline constexpr std::uint64_t kPmSoftDirty = 1ull << 55;
inline constexpr std::uint64_t kPmPfnMask = (1ull << 55) - 1;

struct PagemapEntry {
    bool present = false;
    bool swapped = false;
    bool file_or_shared_anon = false;
    bool exclusive = false;
    bool soft_dirty = false;
    std::uint64_t pfn = 0;   // present only; 0 when the reader lacks CAP_SYS_ADMIN
    unsigned swap_type = 0;  // swapped only
    std::uint64_t swap_offset = 0;
};
PagemapEntry decode_pagemap(std::uint64_t raw);

// /proc/kpageflags bit numbers (include/uapi/linux/kernel-page-flags.h).
inline constexpr int kKpfAnon = 12;
inline constexpr int kKpfSwapBacked = 14;
inline constexpr int kKpfHuge = 17;    // hugetlbfs: outside Rss/Pss, as in smaps
inline constexpr int kKpfNoPage = 20;  // no struct page at this pfn (device memory, PFN maps)
inline constexpr int kKpfKsm = 21;
inline constexpr int kKpfThp = 22;
inline constexpr int kKpfZeroPage = 24;  // the zero page and the huge zero page

inline constexpr bool has_flag(std::uint64_t flags, int bit) {
    return (flags >> bit) & 1u;
}

// PSS in fixed point as the kernel keeps it (fs/proc/task_mmu.c, PSS_SHIFT): each mapping adds
// (page_size << 12) / mapcount, so summing processes loses nothing. Integer kB per page, as
// procrank does, would count a page shared by 5 as 0.
inline constexpr unsigned kPssShift = 12;

// ---- Pure pieces, exposed for tests ----

struct PfnRange {
    std::uint64_t first = 0;
    std::uint64_t count = 0;

    bool operator==(const PfnRange&) const = default;
};

// Ranges that cover every pfn of `sorted_pfns` (ascending, distinct), each read with one pread:
// a gap of at most `max_gap` unwanted frames is read through rather than split on (a syscall
// costs far more than 8 bytes of kpagecount), and no range is longer than `max_len` (> 0).
std::vector<PfnRange> batch_pfns(std::span<const std::uint64_t> sorted_pfns, std::uint64_t max_gap,
                                 std::uint64_t max_len);

// One page-table mapping of frame `pfn` by pool member `member` (an index into the roles).
struct PageRef {
    std::uint64_t pfn = 0;
    std::uint32_t member = 0;
};

// What /proc/kpagecount and /proc/kpageflags say about one frame.
struct FrameInfo {
    std::uint64_t mapcount = 0;
    std::uint64_t flags = 0;
};

struct MemberRole {
    int group = 0;
    bool master = false;  // at most one member
};

// ---- The analysis ----

struct DeepMember {
    pid_t pid = 0;
    // The caller's label, e.g. the worker slot: the members of one worker's subtree share it.
    // "Siblings" are members of other groups; the master should have a group of its own.
    int group = 0;
    // From /proc/PID/stat; when non-zero, a pid that now names another process counts as gone.
    std::uint64_t starttime = 0;
};

inline constexpr int kMasterGroup = -1;

struct DeepOptions {
    std::string proc_root = "/proc";
    // The pool's master (root of the pool, or the workers' parent); 0 for none. If it is not
    // among the members it is added as one, with group kMasterGroup.
    pid_t master = 0;
    std::uint64_t max_gap = 2;               // see batch_pfns
    std::uint64_t max_batch = 1u << 16;      // frames per kpagecount/kpageflags pread
    std::uint64_t pagemap_chunk = 1u << 16;  // pagemap entries per pread
    // VMAs of at least this many pages are first asked for their populated ranges with the
    // PAGEMAP_SCAN ioctl (6.7+), and only those ranges are read: a sparse 16 TiB reservation
    // (ASan shadow, JVM/Go/V8 heaps) would otherwise cost 32 GiB of pagemap reads. 0: never.
    std::uint64_t scan_min_pages = 256;
};

// Per-member counts are in pages and count mappings, as smaps does: a frame the process maps
// twice counts twice. private + pool_shared + outside_shared == resident.
struct DeepProcess {
    pid_t pid = 0;
    int group = 0;
    bool master = false;
    ReadStatus status = ReadStatus::error;  // gone: exited (or pid reused) during the walk
    int err = 0;

    std::uint64_t resident_pages = 0;        // present, zero page and hugetlb excluded (= Rss)
    std::uint64_t private_pages = 0;         // mapcount 1 (= USS)
    std::uint64_t pool_shared_pages = 0;     // mapcount > 1, every mapping a pool member's
    std::uint64_t outside_shared_pages = 0;  // a process outside the pool maps the frame too
    // Who else maps the frame; overlapping (a libc page can count in all three), and not
    // limited to pool_shared (a frame shared with the master may be shared with outsiders too).
    std::uint64_t with_master_pages = 0;    // the master maps it too (0 for the master itself)
    std::uint64_t with_siblings_pages = 0;  // a member of another group, not the master, maps it
    std::uint64_t with_group_pages = 0;     // another member of the same group maps it
    std::uint64_t pss_fixed = 0;            // bytes << kPssShift
    std::uint64_t swapped_pages = 0;        // swap PTEs (not attributed)
    std::uint64_t zero_pages = 0;           // mappings of the (huge) zero page, skipped
    std::uint64_t hugetlb_pages = 0;        // hugetlbfs pages, skipped as smaps' Rss does
    std::uint64_t special_pages = 0;        // pfns without a struct page (device memory), skipped
    std::uint64_t anomalies = 0;            // mappings of frames with kpagecount < pool's count

    std::uint64_t pss_bytes() const { return pss_fixed >> kPssShift; }
};

// Per group (worker subtree), counted in distinct frames.
struct DeepGroup {
    int group = 0;
    std::uint64_t frames = 0;  // distinct frames the group's members map
    // Frames no one but this group maps (its mappings are all of the frame's mappings): what
    // stopping the worker with its subtree frees (anon/shmem; file pages stay cached).
    std::uint64_t group_only_frames = 0;
    std::uint64_t pss_fixed = 0;

    std::uint64_t pss_bytes() const { return pss_fixed >> kPssShift; }
};

// Pool totals, in frames (distinct physical pages) unless named otherwise. Invariants
// (memory.md §1.4): uss_pages <= pool_only_frames <= distinct_frames, Σpss <= distinct.
struct DeepReport {
    ReadStatus status = ReadStatus::error;  // of the pool-wide files (kpagecount, kpageflags)
    int err = 0;
    std::string error;  // what failed, when status is not ok

    std::vector<DeepProcess> procs;  // in the caller's order (the master appended if added)
    std::vector<DeepGroup> groups;   // ascending group

    std::uint64_t page_size = 4096;
    std::uint64_t distinct_frames = 0;     // D: frames some member maps
    std::uint64_t pool_only_frames = 0;    // U: frames only members map (g == m)
    std::uint64_t outside_frames = 0;      // O = D - U: frames outsiders map too
    std::uint64_t pool_shared_frames = 0;  // g == m >= 2: sharing that stays inside the pool
    std::uint64_t rss_pages = 0;           // Σ resident_pages (never "usage")
    std::uint64_t uss_pages = 0;           // Σ private_pages
    std::uint64_t pss_fixed = 0;           // Σ pss_fixed: the pool's footprint
    // Kinds of the distinct frames (kpageflags); file = neither anon nor swap-backed.
    std::uint64_t anon_frames = 0;
    std::uint64_t shmem_frames = 0;
    std::uint64_t file_frames = 0;
    std::uint64_t thp_frames = 0;  // 4 KiB frames that belong to transparent huge pages
    std::uint64_t ksm_frames = 0;
    std::uint64_t swapped_pages = 0;        // Σ swap PTEs
    std::uint64_t distinct_swap_slots = 0;  // swap entries, deduplicated across the pool
    std::uint64_t zero_pages = 0;           // skipped mappings of the zero page
    std::uint64_t anomalies = 0;            // frames with kpagecount below the pool's count
    std::uint64_t pages_read = 0;           // pagemap entries read
    std::uint64_t scan_calls = 0;           // PAGEMAP_SCAN ioctls (0 where unsupported)
    std::uint64_t kpage_reads = 0;          // preads of kpagecount (as many of kpageflags)
    std::uint64_t kpage_entries = 0;        // entries they covered, gaps read through included
    double seconds = 0;                     // the whole analysis
    double walk_seconds = 0;                // of which reading maps and pagemap
    double frames_seconds = 0;              // of which sorting and reading kpagecount/kpageflags

    std::uint64_t pss_bytes() const { return pss_fixed >> kPssShift; }
    // ΣRSS - D: what sharing among pool members saves, outsiders' share excluded.
    std::uint64_t saved_within_pool_pages() const { return rss_pages - distinct_frames; }
};

// The arithmetic of deep_analyze without /proc: classifies `refs` (one per page-table mapping,
// any order) of members with the given roles, asking `frame` once per distinct pfn. Fills the
// counts of `procs` (one per role, in role order; status ok) and of the report's totals.
DeepReport classify_refs(std::span<const MemberRole> roles, std::span<const PageRef> refs,
                         const std::function<FrameInfo(std::uint64_t pfn)>& frame,
                         std::uint64_t page_size = 4096);

// Walks the members' page tables and attributes every resident page. Blocking: O(resident
// pages of the pool); never on the event loop. Needs root (status unreadable otherwise; a
// member whose frame numbers read as 0 is unreadable).
DeepReport deep_analyze(const std::vector<DeepMember>& members, const DeepOptions& options = {});

}  // namespace cow::proc
