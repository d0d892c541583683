// What `cowherd --check` prints besides the errors: the summary (summarize(), in config.hpp)
// and warnings about what only the host can tell.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace cow::config {

// One warning per pool whose command[0] cannot be run from this host, naming the path: it
// does not exist, is not a regular file, is not executable by the user running the check, or
// is not found in the PATH the worker would get. Found the way the daemon finds it: a name
// without '/' is searched in the pool's PATH (its env, else `daemon_path`, the daemon's own);
// a relative path starts in the pool's cwd, else the current directory. Warnings, not errors:
// a config is often checked on another machine (a CI job) than the one it will run on.
std::vector<std::string> command_warnings(const Config& cfg, const std::string& daemon_path);

}  // namespace cow::config
