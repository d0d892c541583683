// Worker output is bytes, not text: it may hold invalid UTF-8 or NULs. Files and the console
// get the bytes as they are; JSON (log shippers, cowctl logs) needs valid UTF-8.
#pragma once

#include <string>
#include <string_view>

namespace cow {

// Replaces each invalid UTF-8 sequence with U+FFFD; valid input comes back unchanged.
std::string valid_utf8(std::string_view bytes);

}  // namespace cow
