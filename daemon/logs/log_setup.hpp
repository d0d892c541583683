// The daemon's own log through spdlog: text or JSON lines (daemon.log_format), to stderr or
// to a size-rotated file (daemon.log_file).
#pragma once

#include <string>

namespace cow {

// Returns an error sentence, or "" on success.
std::string setup_daemon_log(const std::string& level, const std::string& format,
                             const std::string& file);

}  // namespace cow
