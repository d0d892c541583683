// Bounds checked on the raw text before yaml-cpp sees it (design §3.8). yaml-cpp's parser
// recurses once per nesting level and has had stack-overflow CVEs, so depth is estimated here
// by a single flat pass that never recurses.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/diagnostics.hpp"

namespace cow::config::detail {

struct DepthEstimate {
    int depth = 0;  // nested collections: "a: {b: [1]}" is 3 (the document's mapping counts)
    Pos where;      // where `depth` was first reached
};

// Tracks block indentation (including "- - x" compact sequences and sequences written at
// their parent key's column), flow brackets, quoted scalars, comments, plain scalars that
// continue on the next line and block scalars (| and >). It stops as soon as the depth passes
// `limit`. Where it cannot tell how YAML reads a character, it prefers to overcount; yaml-cpp's
// own recursion guard (about 2000 levels) stays behind it as a backstop.
DepthEstimate estimate_depth(std::string_view text, int limit);

struct PrescanIssue {
    Pos pos;
    std::string message;
};

// The error for text over kMaxConfigBytes, shared with the file reader.
std::string too_big_message();

// Size (kMaxConfigBytes), NUL bytes (the text must be UTF-8) and depth (kMaxConfigDepth).
std::optional<PrescanIssue> prescan(std::string_view text);

}  // namespace cow::config::detail
