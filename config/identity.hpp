// Pool identity and limits: user, group, supplementary groups, rlimits. Users and groups are
// resolved here, in the parent, when the config is loaded (NSS must never run between fork
// and exec), and a config that needs root on a daemon without it is an error at load time.
#pragma once

#include "config/config.hpp"
#include "config/diagnostics.hpp"
#include "config/fields.hpp"

namespace cow::config::detail {

void read_user(Diagnostics& diag, const Field& f, Identity& id);
void read_group(Diagnostics& diag, const Field& f, Identity& id);
void read_supplementary(Diagnostics& diag, const Field& f, Identity& id);
void read_rlimits(Diagnostics& diag, const Field& f, std::vector<Rlimit>& out);
// After every key of the pool is read: defaults (primary group, the user's groups) and the
// check that a non-root daemon is not asked to switch users.
void finish_identity(Diagnostics& diag, const Field& pool, Identity& id, bool explicit_groups,
                     Pos groups_pos);

}  // namespace cow::config::detail
