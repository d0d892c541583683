// Error collection shared by every stage of loading, so one run reports all it finds.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace cow::config::detail {

// 1-based, as editors count; line 0 means the error has no position.
struct Pos {
    int line = 0;
    int column = 0;
};

class Diagnostics {
  public:
    explicit Diagnostics(std::string file) : file_(std::move(file)) {}

    void error(Pos pos, std::string_view key_path, std::string message);
    bool has_errors() const { return !errors_.empty() || dropped_ > 0; }

    // Sorted by position. Past kMaxReportedErrors a last entry counts what was left out, since
    // a mangled file can produce thousands and the first few are what the user fixes first.
    std::vector<ConfigError> take();

  private:
    std::string file_;
    std::vector<ConfigError> errors_;
    std::size_t dropped_ = 0;
};

// "a.b" from "a" and "b"; the key alone at the top level.
std::string join_path(std::string_view parent, std::string_view key);

// A value as it appears in a message: double-quoted, control characters escaped, and cut
// short with "..." past `max_len` bytes (0 = never cut) so a huge scalar cannot flood a log.
std::string quote(std::string_view text, std::size_t max_len = 60);

}  // namespace cow::config::detail
