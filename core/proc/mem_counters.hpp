// Memory counters of smaps / smaps_rollup, in bytes (the kernel writes kB). Semantics:
// design §4 and shared/reference/memory.md §1.1. "Shared" means mapped more than once, by anyone
// including this process itself; it does not mean "shared with another process".
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cow::proc {

struct MemCounters {
    std::uint64_t rss = 0;
    std::uint64_t pss = 0;
    std::uint64_t pss_dirty = 0;  // 6.0+
    std::uint64_t pss_anon = 0;   // rollup only, 5.3+
    std::uint64_t pss_file = 0;   // rollup only, 5.3+
    std::uint64_t pss_shmem = 0;  // rollup only, 5.3+
    std::uint64_t shared_clean = 0;
    std::uint64_t shared_dirty = 0;
    std::uint64_t private_clean = 0;
    std::uint64_t private_dirty = 0;
    std::uint64_t referenced = 0;
    std::uint64_t anonymous = 0;
    std::uint64_t ksm = 0;
    std::uint64_t lazy_free = 0;
    std::uint64_t anon_huge = 0;  // PMD-mapped THP only
    std::uint64_t shmem_pmd = 0;
    std::uint64_t file_pmd = 0;
    std::uint64_t shared_hugetlb = 0;  // hugetlbfs is outside rss/pss/uss entirely
    std::uint64_t private_hugetlb = 0;
    std::uint64_t swap = 0;  // counts a COW-shared swapped page in every process: never sum it
    std::uint64_t swap_pss = 0;
    std::uint64_t locked = 0;  // a PSS, despite the name

    // "Name: N kB" fields this code does not know yet, in first-seen order, so that a newer
    // kernel's counters reach --json output instead of vanishing.
    std::vector<std::pair<std::string, std::uint64_t>> extra;

    // Bit i set when kMemFields[i] appeared in the input, so "0" and "not reported by this
    // kernel" (Pss_Anon before 5.3, or in summed smaps) can be told apart.
    std::uint32_t present = 0;

    // Freed if this process alone exits; excludes pages it maps twice and pages in swap.
    std::uint64_t uss() const { return private_clean + private_dirty; }

    // Adds `bytes` to the field the kernel calls `name`; unknown names go to `extra`.
    void add(std::string_view name, std::uint64_t bytes);
    // The value of a known or extra field by kernel name; nullopt if never seen.
    std::optional<std::uint64_t> get(std::string_view name) const;
    bool has(std::string_view name) const { return get(name).has_value(); }

    MemCounters& operator+=(const MemCounters& other);
    bool operator==(const MemCounters&) const = default;
};

struct MemField {
    std::string_view kernel_name;  // as in smaps: "Private_Dirty"
    std::string_view json_name;    // as in our JSON: "private_dirty"
    std::uint64_t MemCounters::*member;
};

inline constexpr std::array<MemField, 22> kMemFields{{
    {"Rss", "rss", &MemCounters::rss},
    {"Pss", "pss", &MemCounters::pss},
    {"Pss_Dirty", "pss_dirty", &MemCounters::pss_dirty},
    {"Pss_Anon", "pss_anon", &MemCounters::pss_anon},
    {"Pss_File", "pss_file", &MemCounters::pss_file},
    {"Pss_Shmem", "pss_shmem", &MemCounters::pss_shmem},
    {"Shared_Clean", "shared_clean", &MemCounters::shared_clean},
    {"Shared_Dirty", "shared_dirty", &MemCounters::shared_dirty},
    {"Private_Clean", "private_clean", &MemCounters::private_clean},
    {"Private_Dirty", "private_dirty", &MemCounters::private_dirty},
    {"Referenced", "referenced", &MemCounters::referenced},
    {"Anonymous", "anonymous", &MemCounters::anonymous},
    {"KSM", "ksm", &MemCounters::ksm},
    {"LazyFree", "lazy_free", &MemCounters::lazy_free},
    {"AnonHugePages", "anon_huge", &MemCounters::anon_huge},
    {"ShmemPmdMapped", "shmem_pmd", &MemCounters::shmem_pmd},
    {"FilePmdMapped", "file_pmd", &MemCounters::file_pmd},
    {"Shared_Hugetlb", "shared_hugetlb", &MemCounters::shared_hugetlb},
    {"Private_Hugetlb", "private_hugetlb", &MemCounters::private_hugetlb},
    {"Swap", "swap", &MemCounters::swap},
    {"SwapPss", "swap_pss", &MemCounters::swap_pss},
    {"Locked", "locked", &MemCounters::locked},
}};

}  // namespace cow::proc
