// Durations and sizes as users write them in config and on the command line.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cow {

using Millis = std::chrono::milliseconds;

// "100ms", "10s", "1.5s", "5m", "2h", "1d", and a bare "0". No unit other than for 0 is an
// error: "10" is ambiguous, so we refuse it.
std::optional<Millis> parse_duration(std::string_view text);

// "512MiB", "2GiB", "64KiB", "1.5GiB", "100MB" (decimal), "4096B" or a bare byte count.
std::optional<std::uint64_t> parse_size(std::string_view text);

// "250ms", "12s", "3m20s", "2h5m", "1d3h": compact, for tables and logs.
std::string format_duration(Millis d);

// "512 B", "12.3 KiB", "1.5 MiB", "2.0 GiB".
std::string format_size(std::uint64_t bytes);

}  // namespace cow
