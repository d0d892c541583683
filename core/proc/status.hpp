// /proc/PID/status: "Key:\tvalue" lines. Cheap (a few µs) and world-readable, so this is what
// frequent sampling reads; its memory counters are approximate (per-CPU batching).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace cow::proc {

class Status {
  public:
    // In file order. A value is the text after "Key:" and one tab, untrimmed, so that a Name
    // beginning with a blank survives.
    std::vector<std::pair<std::string, std::string>> fields;

    std::optional<std::string_view> get(std::string_view key) const;
    // "1732 kB" -> 1773568. nullopt if absent or not a kB value.
    std::optional<std::uint64_t> bytes(std::string_view key) const;
    std::optional<std::uint64_t> number(std::string_view key) const;

    // The kernel escapes '\n' and '\\' in Name; we return it as the kernel wrote it.
    std::optional<std::string_view> name() const { return get("Name"); }
    std::optional<char> state() const;  // 'S' of "S (sleeping)"
    std::optional<pid_t> ppid() const;
    std::optional<std::array<std::uint32_t, 4>> uid() const;  // real, effective, saved, fs
    std::optional<std::array<std::uint32_t, 4>> gid() const;
    std::optional<std::vector<std::uint32_t>> groups() const;
    std::optional<std::uint64_t> vm_rss() const { return bytes("VmRSS"); }
    std::optional<std::uint64_t> rss_anon() const { return bytes("RssAnon"); }
    std::optional<std::uint64_t> rss_file() const { return bytes("RssFile"); }
    std::optional<std::uint64_t> rss_shmem() const { return bytes("RssShmem"); }
    std::optional<std::uint64_t> vm_swap() const { return bytes("VmSwap"); }
    std::optional<bool> no_new_privs() const;
    std::optional<std::uint64_t> cap_eff() const;  // hex in the file
    std::optional<std::uint64_t> threads() const { return number("Threads"); }
};

// Never fails: lines without a ':' are skipped, and a missing key reads as nullopt.
Status parse_status(std::string_view text);

// Shared by status and smaps: "1732 kB" -> bytes, refusing anything that would overflow.
std::optional<std::uint64_t> parse_kb(std::string_view value);

}  // namespace cow::proc
