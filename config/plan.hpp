// The reload plan: what differs between the running config and a new one, pool by pool.
// Pure; the daemon decides how each change is carried out.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace cow::config {

struct PoolChange {
    // updated: only settings the daemon applies without a restart changed (probes that keep
    // their port, hooks), perhaps with workers.
    enum class Kind { added, removed, unchanged, resized, updated, changed };
    std::string name;
    Kind kind = Kind::unchanged;
    std::vector<std::string> keys;  // the settings that differ ("env", "command", ...)
    int old_workers = 0;
    int new_workers = 0;
};

struct ReloadPlan {
    std::vector<PoolChange> pools;         // new config order, then removed pools
    std::vector<std::string> daemon_keys;  // daemon settings that differ
};

ReloadPlan plan_reload(const Config& running, const Config& next);
std::string_view to_string(PoolChange::Kind k);

}  // namespace cow::config
