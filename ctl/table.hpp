// Aligned text tables for cowctl's human output.
#pragma once

#include <string>
#include <vector>

namespace cow::ctl {

struct Style {
    bool color = false;  // a TTY and NO_COLOR unset
};
Style detect_style();

class Table {
  public:
    explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
    // Each cell may carry an ANSI colour; widths ignore escape sequences.
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    std::string render() const;
    bool empty() const { return rows_.empty(); }

  private:
    std::vector<std::string> headers_;
    std::vector<std::vector<std::string>> rows_;
};

std::string colored(const Style& s, std::string_view text, const char* ansi);
const char* state_color(std::string_view state);

}  // namespace cow::ctl
