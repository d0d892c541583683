// /proc/PID/stat: the one-line record every process has, kernel threads and zombies included.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <sys/types.h>

namespace cow::proc {

struct Stat {
    pid_t pid = 0;
    std::string comm;  // without the surrounding parentheses; at most 15 bytes, any bytes
    char state = '?';  // R S D Z T t X I ...
    pid_t ppid = 0;
    pid_t pgrp = 0;
    pid_t session = 0;
    std::uint32_t flags = 0;  // PF_* bits
    std::uint64_t utime = 0;  // clock ticks
    std::uint64_t stime = 0;
    std::int64_t num_threads = 0;
    std::uint64_t starttime = 0;  // clock ticks since boot; with pid it names a process uniquely
    std::uint64_t vsize = 0;      // bytes
    std::uint64_t rss_pages = 0;
};

// Returns nullopt for anything that is not a complete stat line. comm lies between the first
// '(' and the LAST ')', because a process may name itself "a) (b" and we must not be fooled.
std::optional<Stat> parse_stat(std::string_view text);

inline constexpr std::uint32_t kPfKthread = 0x00200000;

// Kernel threads have no mm: no smaps, no cmdline. Identify them by flag, not by an empty
// cmdline, which any process can fake by clearing its argv.
inline bool is_kernel_thread(std::uint32_t flags) {
    return (flags & kPfKthread) != 0;
}

}  // namespace cow::proc
