// Signal names as users type them ("TERM", "SIGTERM", "15") and as we print them ("TERM").
#pragma once

#include <optional>
#include <string_view>

namespace cow {

std::optional<int> parse_signal(std::string_view text);

// "TERM" for 15; "SIG37" for real-time or unknown numbers. Never null.
std::string_view signal_name(int signo);

}  // namespace cow
