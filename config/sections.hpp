// Readers for the two kinds of section in a config file: `daemon` and each pool.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/diagnostics.hpp"
#include "config/fields.hpp"

namespace cow::config::detail {

// The keys each section accepts (planned ones included), to recognise a key written in the
// wrong place.
bool is_daemon_key(std::string_view key);
bool is_pool_key(std::string_view key);

// Fills in what the section sets; `out` arrives holding the defaults.
void read_daemon(Diagnostics& diag, const Field& f, const std::string& base_dir, DaemonConfig& out);

// Where a pool's depends_on was written, for the checks that need every pool (unknown
// names, cycles), which run after all pools are read.
struct DependsSource {
    Pos list_pos;
    std::string list_path;      // "pools.web.depends_on"
    std::vector<Pos> item_pos;  // parallel to PoolConfig::depends_on
};

void read_pool(Diagnostics& diag, const Field& f, const std::string& base_dir, PoolConfig& out,
               DependsSource& deps);

struct PoolEntry {
    PoolConfig pool;
    DependsSource deps;
};

// Once every pool is read: depends_on names that are unknown (with a suggestion) or the pool
// itself, then cycles. A cycle is named once, starting from the pool that comes first in the
// file, and reported at that pool's entry for the next pool in the cycle.
void check_dependencies(Diagnostics& diag, std::span<const PoolEntry> pools);

// "1500ms", "30s", "5m": the largest unit that divides exactly, so the text round-trips
// through cow::parse_duration (cow::format_duration rounds for tables).
std::string exact_duration(Millis d);

}  // namespace cow::config::detail
