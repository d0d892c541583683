// /proc/PID/smaps and /proc/PID/smaps_rollup. Pure parsers over text; reading is reader.hpp's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/proc/mem_counters.hpp"

namespace cow::proc {

struct Mapping {
    std::uint64_t start = 0;
    std::uint64_t end = 0;
    std::string perms;  // "r-xp": 'p' private (copy-on-write), 's' MAP_SHARED
    std::uint64_t offset = 0;
    std::string dev;  // "fe:00"
    std::uint64_t inode = 0;
    // As the kernel printed it: may hold spaces, end in " (deleted)", be "[heap]",
    // "[anon:name]", "/memfd:x (deleted)", or be empty for anonymous memory. The kernel
    // escapes '\n' as "\012". Leading blanks of a file name are lost in the column padding.
    std::string pathname;
    // Per-mapping sizes, kept out of `counters` because summing them means nothing.
    std::uint64_t size = 0;
    std::uint64_t kernel_page_size = 0;
    std::uint64_t mmu_page_size = 0;
    MemCounters counters;
    // Non-kB fields other than VmFlags ("THPeligible", "ProtectionKey"), trimmed.
    std::vector<std::pair<std::string, std::string>> attributes;
    std::string vmflags;  // "rd mr mw me"

    bool shared() const { return perms.size() == 4 && perms[3] == 's'; }
    bool executable() const { return perms.size() == 4 && perms[2] == 'x'; }
    bool deleted() const;
    // pathname without a trailing " (deleted)".
    std::string_view path() const;
};

// Lines that fit neither a mapping header nor a "Name: value" field, or fields before any
// header. A short read or a kernel format change shows up here rather than as a crash.
struct SmapsIssues {
    std::size_t skipped_lines = 0;
    std::string first_skipped;  // at most 120 bytes of the first one
};

std::vector<Mapping> parse_smaps(std::string_view text, SmapsIssues* issues = nullptr);

// smaps_rollup: an optional "lo-hi ---p 00000000 00:00 0 [rollup]" header, then fields. nullopt
// when no Rss line is present: that is not a rollup, and zeros would be a lie (design §4).
std::optional<MemCounters> parse_smaps_rollup(std::string_view text, SmapsIssues* issues = nullptr);

// Rollup-equivalent totals for kernels before 4.14. Differences from a real rollup: each
// mapping's Pss was truncated to whole kB, so the sum is up to 1 kB per mapping lower; and
// Pss_Anon/Pss_File/Pss_Shmem do not exist per mapping, so they stay absent (`present`).
MemCounters sum(const std::vector<Mapping>& mappings);

}  // namespace cow::proc
