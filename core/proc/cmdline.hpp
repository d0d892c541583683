// /proc/PID/cmdline: NUL-separated argv. Empty for kernel threads and zombies.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace cow::proc {

// A process may overwrite its argv (setproctitle), leaving one string with spaces and perhaps
// no final NUL; that comes back as one element, which is what the process asked to show.
std::vector<std::string> split_cmdline(std::string_view raw);

// Arguments joined by spaces for tables and JSON: control bytes become '?', so a crafted argv
// cannot forge lines in a terminal, and the result is cut to at most `max_bytes` bytes at a
// UTF-8 character boundary, ending in "..." when cut.
std::string display_cmdline(const std::vector<std::string>& args, std::size_t max_bytes = 256);

}  // namespace cow::proc
